"""A registered vehicle as the hub keeps it, and the rules every record obeys."""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from typing import Any, cast

from hub.errors import InvalidArgument
from lockerhub.v1 import vehicles_pb2

MAX_PARCELS = 10_000
MAX_VOLUME_L = 100_000.0
MAX_BATTERY_KWH = 1_000.0
MAX_CONSUMPTION = 5.0
MAX_PERMITS = 64
MAX_REASON = 200
# Insurance expiry, like every timestamp the hub accepts: 2020..2100 in epoch ms.
MIN_MS, MAX_MS = 1_577_836_800_000, 4_102_444_800_000
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Plates and frame numbers: letters (any script: Chinese plates start with one), digits, - and ·.
_PLATE = re.compile(r"^[\w][\w\-·]{1,31}$")
NEW_ENERGY_NOTE = "new-energy: a vehicle with a battery (e-bikes, electric vans, electric boxes)"


class VehicleClass(enum.StrEnum):
    E_BIKE = "e_bike"
    ELECTRIC_VAN = "electric_van"
    BOX_VEHICLE = "box_vehicle"
    COMBUSTION_VAN = "combustion_van"

    def to_proto(self) -> vehicles_pb2.VehicleClass.ValueType:
        return vehicles_pb2.VehicleClass.Value(f"VEHICLE_CLASS_{self.name}")

    @classmethod
    def from_proto(cls, value: int) -> VehicleClass:
        """Raises ValueError for UNSPECIFIED or an unknown number."""
        try:
            name = vehicles_pb2.VehicleClass.Name(cast(Any, value))
        except ValueError:
            raise ValueError(f"unknown vehicle class {value}") from None
        if name == "VEHICLE_CLASS_UNSPECIFIED":
            raise ValueError("vehicle class is required")
        return cls[name.removeprefix("VEHICLE_CLASS_")]


@dataclass(frozen=True, slots=True, kw_only=True)
class Vehicle:
    """One registered vehicle or e-bike (``battery_kwh == 0``: no battery)."""

    vehicle_id: str
    plate: str
    vehicle_class: VehicleClass
    capacity_parcels: int
    capacity_volume_l: float = 0.0
    battery_kwh: float = 0.0
    consumption_kwh_per_km: float = 0.0
    permit_zones: tuple[str, ...] = ()
    depot_site: str
    driver_id: str = ""
    safety_trained: bool = False
    insurance_expiry_ms: int = 0
    id_tag: str = ""
    retired: bool = False
    retired_reason: str = ""
    registered_ms: int = 0
    updated_ms: int = 0

    @property
    def new_energy(self) -> bool:
        return self.battery_kwh > 0

    def unusable_reason(self, at_ms: int) -> str:
        """Why the vehicle may not be dispatched at ``at_ms`` ("" = it may)."""
        if self.retired:
            return "retired"
        if not self.driver_id:
            return "no driver assigned"
        if not self.safety_trained:
            return "driver has no safety training"
        if self.insurance_expiry_ms <= at_ms:
            return "insurance expired"
        return ""


def check(v: Vehicle) -> None:
    """Validate a record as a whole; every problem is named by its field.

    Raises:
        InvalidArgument: listing each bad field.
    """
    problems: list[str] = []

    def need(ok: bool, field: str, message: str) -> None:
        if not ok:
            problems.append(f"vehicle.{field}: {message}")

    need(bool(_ID.fullmatch(v.vehicle_id)), "vehicle_id", "must be 1-64 of A-Z a-z 0-9 _ . -")
    need(bool(_PLATE.fullmatch(v.plate)), "plate", "must be 2-32 letters, digits, - or ·")
    need(bool(_ID.fullmatch(v.depot_site)), "depot_site", "must be a site id")
    need(0 < v.capacity_parcels <= MAX_PARCELS, "capacity_parcels", f"must be 1-{MAX_PARCELS}")
    for name, top in (
        ("capacity_volume_l", MAX_VOLUME_L),
        ("battery_kwh", MAX_BATTERY_KWH),
        ("consumption_kwh_per_km", MAX_CONSUMPTION),
    ):
        value = getattr(v, name)
        need(math.isfinite(value) and 0 <= value <= top, name, f"must be 0-{top:g}")
    electric = v.battery_kwh > 0
    need(
        electric == (v.consumption_kwh_per_km > 0),
        "consumption_kwh_per_km",
        "a battery needs a consumption > 0, and only a battery has one",
    )
    if v.vehicle_class in (VehicleClass.E_BIKE, VehicleClass.ELECTRIC_VAN):
        need(electric, "battery_kwh", f"an {v.vehicle_class} needs a battery > 0")
    if v.vehicle_class is VehicleClass.COMBUSTION_VAN:
        need(not electric, "battery_kwh", "a combustion van has no battery (0)")
    need(len(v.permit_zones) <= MAX_PERMITS, "permit_zones", f"at most {MAX_PERMITS}")
    for i, z in enumerate(v.permit_zones):
        need(bool(_ID.fullmatch(z)), f"permit_zones[{i}]", "must be a zone id")
    need(len(set(v.permit_zones)) == len(v.permit_zones), "permit_zones", "has duplicates")
    if v.driver_id:
        need(bool(_ID.fullmatch(v.driver_id)), "driver.driver_id", "must be a staff id")
    need(
        v.insurance_expiry_ms == 0 or MIN_MS <= v.insurance_expiry_ms <= MAX_MS,
        "driver.insurance_expiry_ms",
        "must be 0 or epoch ms within 2020-2100",
    )
    if v.id_tag:
        need(
            bool(re.fullmatch(r"[A-Za-z0-9]{1,20}", v.id_tag)),
            "id_tag",
            "must be 1-20 letters or digits (an OCPP idToken)",
        )
    if problems:
        raise InvalidArgument("; ".join(problems[:10]))


def from_proto(msg: vehicles_pb2.RegisteredVehicle) -> Vehicle:
    """The request's record, validated (timestamps and retirement are the hub's own).

    Raises:
        InvalidArgument: naming each bad field.
    """
    try:
        vclass = VehicleClass.from_proto(msg.vehicle_class)
    except ValueError as exc:
        raise InvalidArgument(f"vehicle.vehicle_class: {exc}") from None
    v = Vehicle(
        vehicle_id=msg.vehicle_id,
        plate=msg.plate.strip(),
        vehicle_class=vclass,
        capacity_parcels=msg.capacity_parcels,
        capacity_volume_l=msg.capacity_volume_l,
        battery_kwh=msg.battery_kwh,
        consumption_kwh_per_km=msg.consumption_kwh_per_km,
        permit_zones=tuple(msg.permit_zones),
        depot_site=msg.depot_site,
        driver_id=msg.driver.driver_id,
        safety_trained=msg.driver.safety_trained,
        insurance_expiry_ms=msg.driver.insurance_expiry_ms,
        id_tag=msg.id_tag,
    )
    check(v)
    return v


def to_proto(v: Vehicle) -> vehicles_pb2.RegisteredVehicle:
    return vehicles_pb2.RegisteredVehicle(
        vehicle_id=v.vehicle_id,
        plate=v.plate,
        vehicle_class=v.vehicle_class.to_proto(),
        capacity_parcels=v.capacity_parcels,
        capacity_volume_l=v.capacity_volume_l,
        battery_kwh=v.battery_kwh,
        consumption_kwh_per_km=v.consumption_kwh_per_km,
        permit_zones=sorted(v.permit_zones),
        depot_site=v.depot_site,
        driver=vehicles_pb2.Driver(
            driver_id=v.driver_id,
            safety_trained=v.safety_trained,
            insurance_expiry_ms=v.insurance_expiry_ms,
        ),
        retired=v.retired,
        retired_reason=v.retired_reason,
        registered_ms=v.registered_ms,
        updated_ms=v.updated_ms,
        id_tag=v.id_tag,
    )
