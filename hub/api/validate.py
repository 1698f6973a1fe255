"""Request validation: every problem is reported with its field path; nothing is stored."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence

from hub.errors import InvalidArgument
from hub.models import Dims, ParcelState, Zone
from hub.parcels.announcing import Announcement
from hub.parcels.phones import normalize_phone
from hub.planning.routes import MAX_VEHICLES, VehicleSpec
from lockerhub.v1 import dispatch_pb2, fleet_pb2

MAX_BATCH = 10_000
MAX_DIM_MM = 3_000
MAX_WEIGHT_G = 100_000
MAX_REASON = 200
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MAX_REPORTED = 10


class Problems:
    """Collects field errors so one answer names them all (up to a limit)."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, field: str, message: str) -> None:
        self.items.append(f"{field}: {message}")

    def check_id(self, field: str, value: str) -> None:
        if not value:
            self.add(field, "is required")
        elif not _ID.fullmatch(value):
            self.add(field, "must be 1-64 of A-Z a-z 0-9 _ . - starting with a letter or digit")

    def raise_if_any(self) -> None:
        if self.items:
            more = len(self.items) - _MAX_REPORTED
            text = "; ".join(self.items[:_MAX_REPORTED])
            raise InvalidArgument(text + (f"; and {more} more" if more > 0 else ""))


def announcements(request: dispatch_pb2.AnnounceParcelsRequest) -> list[Announcement]:
    """Validate a whole batch.

    Raises:
        InvalidArgument: naming each malformed field (``parcels[2].weight_g: must be > 0``).
    """
    problems = Problems()
    if not request.parcels:
        problems.add("parcels", "at least one parcel is required")
    if len(request.parcels) > MAX_BATCH:
        problems.add("parcels", f"at most {MAX_BATCH} parcels per request")
    problems.raise_if_any()
    out: list[Announcement] = []
    first_index: dict[str, int] = {}
    # Each field is read from the message once: a protobuf attribute read builds a new object.
    for i, p in enumerate(request.parcels):
        f = f"parcels[{i}]"
        parcel_id, site, carrier = p.parcel_id, p.destination_site, p.carrier_id
        problems.check_id(f"{f}.parcel_id", parcel_id)
        first = first_index.setdefault(parcel_id, i)
        if first != i:
            problems.add(f"{f}.parcel_id", f"duplicates parcels[{first}]")
        problems.check_id(f"{f}.destination_site", site)
        if carrier:
            problems.check_id(f"{f}.carrier_id", carrier)
        d = p.dimensions
        sides = (d.width_mm, d.height_mm, d.depth_mm)
        for name, value in zip(_DIMENSIONS, sides, strict=True):
            if not 0 < value <= MAX_DIM_MM:
                problems.add(f"{f}.dimensions.{name}", f"must be 1-{MAX_DIM_MM}")
        weight = p.weight_g
        if not 0 < weight <= MAX_WEIGHT_G:
            problems.add(f"{f}.weight_g", f"must be 1-{MAX_WEIGHT_G}")
        try:
            zone = Zone.from_proto(p.zone)
        except (ValueError, KeyError):
            problems.add(f"{f}.zone", "unknown temperature zone")
            zone = Zone.AMBIENT
        consent = _CONSENT.get(p.locker_consent)
        if consent is None:
            problems.add(f"{f}.locker_consent", "unknown locker consent value")
        phone = normalize_phone(p.recipient_phone)
        if phone is None:
            # Never echo the number: the message may be logged.
            problems.add(f"{f}.recipient_phone", "must be 6-15 digits with an optional leading +")
        if problems.items:
            continue
        assert phone is not None
        assert consent is not None
        out.append(
            Announcement(
                parcel_id=parcel_id,
                site=site,
                dims=Dims(*sides),
                weight_g=weight,
                zone=zone,
                phone=phone,
                electronic_waybill=p.electronic_waybill,
                reusable_container=p.reusable_container,
                carrier_id=carrier,
                locker_consent=consent,
            )
        )
    problems.raise_if_any()
    return out


_DIMENSIONS = ("width_mm", "height_mm", "depth_mm")
_CONSENT: dict[int, str] = {
    dispatch_pb2.LOCKER_CONSENT_UNSPECIFIED: "unspecified",
    dispatch_pb2.LOCKER_CONSENT_GIVEN: "given",
    dispatch_pb2.LOCKER_CONSENT_REFUSED: "refused",
}


def required_id(field: str, value: str) -> str:
    problems = Problems()
    problems.check_id(field, value)
    problems.raise_if_any()
    return value


def optional_id(field: str, value: str) -> str:
    return required_id(field, value) if value else ""


def parcel_state(value: int) -> ParcelState | None:
    """UNSPECIFIED = no filter."""
    if value == 0:
        return None
    try:
        return ParcelState.from_proto(value)
    except (ValueError, KeyError):
        raise InvalidArgument(f"state: unknown parcel state {value}") from None


def open_request(request: fleet_pb2.OpenCompartmentRequest) -> None:
    problems = Problems()
    problems.check_id("cabinet_id", request.cabinet_id)
    problems.check_id("compartment_id", request.compartment_id)
    if not request.reason.strip():
        problems.add("reason", "is required (remote opens are audited)")
    elif len(request.reason) > MAX_REASON:
        problems.add("reason", f"at most {MAX_REASON} characters")
    elif not plain_text(request.reason):
        problems.add("reason", _NOT_PLAIN)
    problems.raise_if_any()


# Control and format characters (newlines, escapes, bidi overrides, zero-width joiners) would let
# an audit line be forged or rendered as something else; every other character (any script,
# full-width spaces) is an operator's to type.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_NOT_PLAIN = "control or invisible formatting characters are not allowed"


def plain_text(value: str) -> bool:
    """True when ``value`` has no control, format, private-use or unassigned characters."""
    return not any(unicodedata.category(ch) in _HIDDEN for ch in value)


def reason(value: str, *, required: bool, field: str = "reason") -> str:
    """An audit reason (or note, named by ``field``): stripped, at most MAX_REASON characters."""
    text = value.strip()
    if required and not text:
        raise InvalidArgument(f"{field}: is required (the action is audited)")
    if len(value) > MAX_REASON:
        raise InvalidArgument(f"{field}: at most {MAX_REASON} characters")
    if not plain_text(text):
        raise InvalidArgument(f"{field}: {_NOT_PLAIN}")
    return text


_ALARM_ID = re.compile(r"[0-9]{1,18}")  # ASCII only: str.isdigit() also takes "١٢" and "²"


def alarm_id(value: str) -> int:
    if not _ALARM_ID.fullmatch(value):
        raise InvalidArgument("alarm_id: must be an alarm id from ListAlarms (digits)")
    return int(value)


def compartment_ref(cabinet_id: str, compartment_id: str) -> None:
    problems = Problems()
    problems.check_id("cabinet_id", cabinet_id)
    problems.check_id("compartment_id", compartment_id)
    problems.raise_if_any()


MAX_SITE_COUNTS = 10_000


def site_counts(field: str, items: Sequence[dispatch_pb2.SiteCount]) -> dict[str, int]:
    """Per-site counts (e.g. empty containers): valid, unique sites, 0-10000 each.

    Raises:
        InvalidArgument: naming each bad entry.
    """
    problems = Problems()
    if len(items) > MAX_SITE_COUNTS:
        problems.add(field, f"at most {MAX_SITE_COUNTS} entries")
        problems.raise_if_any()
    out: dict[str, int] = {}
    for i, item in enumerate(items):
        problems.check_id(f"{field}[{i}].site", item.site)
        if item.site in out:
            problems.add(f"{field}[{i}].site", "duplicate")
        if item.count > 10_000:
            problems.add(f"{field}[{i}].count", "must be 0-10000")
        out[item.site] = item.count
    problems.raise_if_any()
    return out


def vehicles(items: Sequence[dispatch_pb2.Vehicle]) -> list[VehicleSpec]:
    """Raises InvalidArgument naming each bad vehicle field."""
    problems = Problems()
    if not items:
        problems.add("vehicles", "at least one vehicle is required")
    if len(items) > MAX_VEHICLES:
        problems.add("vehicles", f"at most {MAX_VEHICLES}")
    problems.raise_if_any()
    seen: set[str] = set()
    for i, v in enumerate(items):
        problems.check_id(f"vehicles[{i}].vehicle_id", v.vehicle_id)
        if v.vehicle_id in seen:
            problems.add(f"vehicles[{i}].vehicle_id", "duplicate")
        seen.add(v.vehicle_id)
        if not 0 < v.capacity_parcels <= 100_000:
            problems.add(f"vehicles[{i}].capacity_parcels", "must be 1-100000")
        for name in ("capacity_volume_l", "battery_kwh", "consumption_kwh_per_km"):
            value = getattr(v, name)
            if not (math.isfinite(value) and 0 <= value <= 1e6):
                problems.add(f"vehicles[{i}].{name}", "must be a finite number >= 0")
        if v.battery_kwh > 0 and not v.consumption_kwh_per_km > 0:
            problems.add(f"vehicles[{i}].consumption_kwh_per_km", "must be > 0 for an EV")
    problems.raise_if_any()
    return [
        VehicleSpec(
            v.vehicle_id,
            v.capacity_parcels,
            v.capacity_volume_l,
            v.battery_kwh,
            v.consumption_kwh_per_km,
        )
        for v in items
    ]
