"""Recipient phone numbers: normalised on the way in, masked (138****1234) on every way out."""

from __future__ import annotations

import re

_PHONE = re.compile(r"^\+?[0-9]{6,15}$")


def normalize_phone(raw: str) -> str | None:
    """Digits with an optional leading ``+`` (spaces and dashes removed), or None if invalid."""
    cleaned = re.sub(r"[\s\-()]", "", raw)
    return cleaned if _PHONE.fullmatch(cleaned) else None


def mask_phone(phone: str) -> str:
    """``13812341234`` -> ``138****1234``: first three and last four kept."""
    if len(phone) >= 8:
        return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
    return "*" * (len(phone) - 2) + phone[-2:]
