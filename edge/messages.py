"""Small message builders shared by the agent: events, alarms, birth specs, code matching."""

from __future__ import annotations

from collections.abc import Sequence

from lockerhub.codes import MAX_DIGITS, MIN_DIGITS, verify_code
from lockerhub.driver import CompartmentSpec, SizeClass
from lockerhub.v1 import common_pb2, device_pb2

_SIZE_PROTO = {
    SizeClass.XS: common_pb2.SIZE_CLASS_XS,
    SizeClass.S: common_pb2.SIZE_CLASS_S,
    SizeClass.M: common_pb2.SIZE_CLASS_M,
    SizeClass.L: common_pb2.SIZE_CLASS_L,
    SizeClass.XL: common_pb2.SIZE_CLASS_XL,
}


def match_code(
    code: str, candidates: Sequence[tuple[str, str | None, str | None]]
) -> tuple[str, str | None] | None:
    """The (compartment, parcel) whose stored hash matches ``code`` (runs in a worker thread)."""
    if not (code.isdigit() and MIN_DIGITS <= len(code) <= MAX_DIGITS):
        return None
    for cid, parcel_id, code_hash in candidates:
        if code_hash and verify_code(code, code_hash):
            return cid, parcel_id
    return None


def event(**body: object) -> device_pb2.DeviceEvent:
    """A DeviceEvent with one body; the store assigns event_id, seq and ts_ms."""
    return device_pb2.DeviceEvent(**body)  # type: ignore[arg-type]


def alarm(
    kind: common_pb2.AlarmKind.ValueType, cid: str, detail: str, *, active: bool = True
) -> device_pb2.DeviceEvent:
    return event(
        alarm=device_pb2.AlarmRaised(kind=kind, compartment_id=cid, detail=detail, active=active)
    )


def spec_proto(spec: CompartmentSpec) -> common_pb2.CompartmentSpec:
    return common_pb2.CompartmentSpec(
        compartment_id=spec.compartment_id,
        size=_SIZE_PROTO[spec.size],
        inner=common_pb2.Dimensions(
            width_mm=spec.width_mm, height_mm=spec.height_mm, depth_mm=spec.depth_mm
        ),
        max_weight_g=spec.max_weight_g,
        zone=common_pb2.TEMPERATURE_ZONE_CHILLED
        if spec.chilled
        else common_pb2.TEMPERATURE_ZONE_AMBIENT,
    )
