"""The recipient's consent to locker delivery, recorded at announce (parcels.locker_consent).

A parcel whose recipient refused is not put in a locker: its announcement is refused with a
reason that says so. An announcement from a client older than the field carries UNSPECIFIED;
``privacy.unspecified_consent`` decides: "assume" (the default, so that existing integrations keep
working; recorded as "unspecified" so the export can count them) or "refuse".
"""

from __future__ import annotations

REFUSED = "no locker consent: the recipient refused delivery to a locker"
UNSPECIFIED_REFUSED = "no locker consent: locker_consent is unspecified and this hub requires it"


def consent_refusal(consent: str, unspecified_policy: str) -> str:
    """Why a parcel with ``consent`` may not go into a locker ("" = it may)."""
    if consent == "refused":
        return REFUSED
    if consent == "unspecified" and unspecified_policy == "refuse":
        return UNSPECIFIED_REFUSED
    return ""
