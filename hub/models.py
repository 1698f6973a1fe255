"""Domain records the hub passes around (frozen), and their vocabulary as stored in the database."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, cast

from lockerhub.states import CompartmentState
from lockerhub.v1 import common_pb2, device_pb2


class ParcelState(enum.StrEnum):
    ANNOUNCED = "announced"
    SORTED = "sorted"
    LOADED = "loaded"
    RESERVED = "reserved"
    DEPOSITED = "deposited"
    PICKED_UP = "picked_up"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    RETURNED = "returned"
    CANCELLED = "cancelled"

    def to_proto(self) -> common_pb2.ParcelState.ValueType:
        return common_pb2.ParcelState.Value(f"PARCEL_STATE_{self.name}")

    @classmethod
    def from_proto(cls, value: int) -> ParcelState:
        """Raises ValueError for UNSPECIFIED or an unknown number."""
        name = common_pb2.ParcelState.Name(cast(Any, value)).removeprefix("PARCEL_STATE_")
        return cls[name]


class Zone(enum.StrEnum):
    AMBIENT = "ambient"
    CHILLED = "chilled"

    def to_proto(self) -> common_pb2.TemperatureZone.ValueType:
        return common_pb2.TemperatureZone.Value(f"TEMPERATURE_ZONE_{self.name}")

    @classmethod
    def from_proto(cls, value: int) -> Zone:
        """UNSPECIFIED means ambient; raises ValueError for unknown numbers."""
        if value == common_pb2.TEMPERATURE_ZONE_UNSPECIFIED:
            return cls.AMBIENT
        return cls[
            common_pb2.TemperatureZone.Name(cast(Any, value)).removeprefix("TEMPERATURE_ZONE_")
        ]


def size_name(value: int) -> str:
    """Stored size class ("S", "M", ...; "unspecified" for 0)."""
    try:
        name = common_pb2.SizeClass.Name(cast(Any, value)).removeprefix("SIZE_CLASS_")
    except ValueError:
        return "unspecified"
    return name if name != "UNSPECIFIED" else "unspecified"


def size_to_proto(name: str) -> common_pb2.SizeClass.ValueType:
    try:
        return common_pb2.SizeClass.Value(f"SIZE_CLASS_{name}")
    except ValueError:
        return common_pb2.SIZE_CLASS_UNSPECIFIED


def device_kind_name(value: int) -> str:
    try:
        name = device_pb2.DeviceKind.Name(cast(Any, value)).removeprefix("DEVICE_KIND_").lower()
    except ValueError:
        return "unspecified"
    return name


class CommandState(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    TIMED_OUT = "timed_out"

    @property
    def final(self) -> bool:
        return self not in (CommandState.QUEUED, CommandState.SENT)


@dataclass(frozen=True, slots=True)
class Dims:
    """Millimetres."""

    width_mm: int
    height_mm: int
    depth_mm: int


@dataclass(frozen=True, slots=True)
class Transition:
    state: ParcelState
    ts_ms: int
    actor: str
    location: str
    courier: str = ""


@dataclass(frozen=True, slots=True)
class ParcelRecord:
    parcel_id: str
    state: ParcelState
    site: str
    cabinet_id: str
    compartment_id: str
    dims: Dims
    weight_g: int
    zone: Zone
    phone_masked: str
    electronic_waybill: bool
    reusable_container: bool
    pickup_deadline_ms: int
    history: tuple[Transition, ...] = ()
    carrier_id: str = ""


@dataclass(frozen=True, slots=True)
class CompartmentRecord:
    cabinet_id: str
    compartment_id: str
    size: str
    inner: Dims
    max_weight_g: int
    zone: Zone
    state: CompartmentState
    door_open: bool
    item_present: bool
    parcel_id: str


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    device_id: str
    site: str
    kind: str
    online: bool
    boot_count: int
    last_seen_ms: int
    energy_wh: float
    power_w: float
    compartments: tuple[CompartmentRecord, ...] = ()
    # False for a device that registered itself by its birth (auto_register): no operator said
    # what it is, so it may send no event (hub.ingest.authz) and gets no compartments.
    provisioned: bool = True


@dataclass(frozen=True, slots=True)
class CommandRecord:
    command_id: str
    device_id: str
    type: str
    state: CommandState
    outcome: str
    relay_fired: bool
    detail: str
    expires_ms: int
    # When it was published (0: never sent, e.g. queued while the broker was down).
    sent_ms: int = 0


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """What a device reported for a command (OpenCompartment's answer)."""

    command_id: str
    outcome: common_pb2.CommandOutcome.ValueType
    relay_fired: bool
    detail: str


OUTCOME_SUCCESS = frozenset(
    {
        common_pb2.COMMAND_OUTCOME_OPENED,
        common_pb2.COMMAND_OUTCOME_ALREADY_OPEN,
        common_pb2.COMMAND_OUTCOME_APPLIED,
    }
)


def outcome_name(value: int) -> str:
    try:
        return (
            common_pb2.CommandOutcome.Name(cast(Any, value))
            .removeprefix("COMMAND_OUTCOME_")
            .lower()
        )
    except ValueError:
        return "unspecified"


class AlarmStatus(enum.StrEnum):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    alarm_id: int
    kind: str
    site: str
    device_id: str
    compartment_id: str
    detail: str
    raised_ms: int
    status: str
    acknowledged_by: str


def alarm_kind_name(value: int) -> str:
    """Stored alarm kind ("door_forced", ...; "unspecified" for unknown numbers)."""
    try:
        return common_pb2.AlarmKind.Name(cast(Any, value)).removeprefix("ALARM_KIND_").lower()
    except ValueError:
        return "unspecified"


def alarm_kind_to_proto(name: str) -> common_pb2.AlarmKind.ValueType:
    try:
        return common_pb2.AlarmKind.Value(f"ALARM_KIND_{name.upper()}")
    except ValueError:
        return common_pb2.ALARM_KIND_UNSPECIFIED


@dataclass(frozen=True, slots=True)
class SiteRecord:
    site_id: str
    name: str
    lat: float
    lon: float
    cabinets: int
    compartments_free: int
    compartments_total: int
