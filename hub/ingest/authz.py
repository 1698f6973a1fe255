"""Who may send what: the one authorization table for device events (docs/security.md).

A device's kind is what the operator provisioned (``[[cabinets]]`` in the hub's settings, see
docs/hub.md), never what its birth claims; its site is the one it is registered at (checked by
``Registry.check_sender`` before this table). Every event body is looked up here before any
handler runs, and a parcel-moving event is checked again against the parcel it names:

* ``OWN`` - the device itself or its own compartments (the handler checks the compartment);
* ``OWN_COMPARTMENT`` - a parcel reserved for, or deposited in, one of the sender's compartments;
* ``SITE_PARCEL`` - a parcel announced to the sender's site, or to a site whose sorting hub
  (``[[sites]] sorting_hub``) is the sender's site.

A pair missing from the table is refused (deny by default): the event is dropped with the
``unauthorized`` reason and an ``unauthorized_event`` alarm is raised for the sender.
"""

from __future__ import annotations

import enum
from types import MappingProxyType

from hub.errors import Unauthorized
from hub.models import ParcelRecord
from lockerhub.topics import Topic


class Scope(enum.StrEnum):
    """Which parcels (if any) an allowed event may touch."""

    OWN = "own"
    OWN_COMPARTMENT = "own_compartment"
    SITE_PARCEL = "site_parcel"


# Device kinds as stored (``hub.models.device_kind_name``); "unprovisioned" is a device that
# registered itself by its birth and that no operator provisioned: it may send nothing.
CABINET, SORTING_LINE, CHARGING_PILE, SCREENING_STATION, UNPROVISIONED = (
    "cabinet",
    "sorting_line",
    "charging_pile",
    "screening_station",
    "unprovisioned",
)

RULES: MappingProxyType[tuple[str, str], Scope] = MappingProxyType(
    {
        (CABINET, "deposited"): Scope.OWN_COMPARTMENT,
        (CABINET, "picked_up"): Scope.OWN_COMPARTMENT,
        (CABINET, "pickup_code_rejected"): Scope.OWN,
        (CABINET, "door_changed"): Scope.OWN,
        (CABINET, "alarm"): Scope.OWN,
        (SORTING_LINE, "parcel_sorted"): Scope.SITE_PARCEL,
        (SORTING_LINE, "parcel_rejected"): Scope.OWN,
        (SORTING_LINE, "alarm"): Scope.OWN,
        (SORTING_LINE, "sort_plan_applied"): Scope.OWN,
        # FILLED and RETURNED at the line's own site (hub.sorting.containers checks the action).
        (SORTING_LINE, "container_moved"): Scope.OWN,
        (SCREENING_STATION, "parcel_screened"): Scope.SITE_PARCEL,
        (SCREENING_STATION, "alarm"): Scope.OWN,
        (CHARGING_PILE, "alarm"): Scope.OWN,
    }
)


def authorize(kind: str, body: str, topic: Topic) -> Scope:
    """The scope in which a device of ``kind`` may send an event with ``body``.

    Raises:
        Unauthorized: the table has no such pair.
    """
    scope = RULES.get((kind, body))
    if scope is None:
        raise Unauthorized(f"{topic.device} ({kind}) may not send {body or 'an empty event'}")
    return scope


def check_parcel(
    scope: Scope,
    topic: Topic,
    parcel: ParcelRecord,
    compartment_id: str = "",
    *,
    sorting_hub: str = "",
) -> None:
    """Raise Unauthorized unless ``parcel`` is within ``scope`` for the sender of ``topic``.

    Args:
        sorting_hub: the site whose sorting lines sort parcels for ``parcel.site``
            (``[[sites]] sorting_hub``); its lines count as the parcel's site too.
    """
    if scope is Scope.OWN_COMPARTMENT:
        ok = (parcel.cabinet_id, parcel.compartment_id) == (topic.device, compartment_id)
        where = "a compartment of another cabinet"
    elif scope is Scope.SITE_PARCEL:
        ok = topic.site in (parcel.site, sorting_hub)
        where = "another site"
    else:
        ok, where = False, "no parcel scope"
    if not ok:
        raise Unauthorized(f"{topic.device} named a parcel of {where}")
