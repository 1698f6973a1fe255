"""Encode and decode MQTT payloads: protobuf binary by default, the protobuf JSON mapping when a
device says so with the MQTT 5 content type. Every decoded message is validated before use."""

from __future__ import annotations

import math
import unicodedata
from typing import TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from lockerhub.errors import PayloadError
from lockerhub.topics import Kind
from lockerhub.v1 import device_pb2, sorting_pb2

CONTENT_TYPE_PROTOBUF = "application/x-protobuf"
CONTENT_TYPE_JSON = "application/json"
DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024
# Timestamps before 2020 or absurdly far ahead are device clock faults, not data.
_MIN_TS_MS = 1_577_836_800_000
_MAX_TS_MS = 4_102_444_800_000
_MAX_ID_LEN = 64
_MAX_TEXT_LEN = 512
# Counters (seq, boot_count, versions) stay within the integers JSON and SQLite both hold exactly.
MAX_COUNTER = 2**53 - 1
# Physical plausibility: a meter or probe reading outside these is a fault, not data.
_MAX_ENERGY_WH = 1e12
_MAX_POWER_W = 1e7
_TEMPERATURE_C = (-100.0, 150.0)

M = TypeVar("M", bound=Message)

MESSAGE_TYPES: dict[Kind, type[Message]] = {
    Kind.STATUS: device_pb2.DeviceStatus,
    Kind.TELEMETRY: device_pb2.Telemetry,
    Kind.EVENT: device_pb2.DeviceEvent,
    Kind.COMMAND: device_pb2.Command,
    Kind.COMMAND_RESULT: device_pb2.CommandResult,
    Kind.DESIRED: device_pb2.DesiredState,
}


def encode(message: Message) -> bytes:
    """Protobuf binary encoding (content type CONTENT_TYPE_PROTOBUF)."""
    return message.SerializeToString(deterministic=True)


def encode_json(message: Message) -> bytes:
    """Protobuf JSON mapping (content type CONTENT_TYPE_JSON), for third-party devices and tests."""
    return json_format.MessageToJson(message, indent=None).encode()


def encode_as(message: Message, content_type: str) -> bytes:
    """``message`` in the format a device asked for (its birth's ``accept``)."""
    return encode_json(message) if content_type == CONTENT_TYPE_JSON else encode(message)


def decode(
    kind: Kind,
    payload: bytes,
    *,
    content_type: str | None = None,
    max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> Message:
    """Decode and validate the payload of a ``kind`` topic.

    Raises:
        PayloadError: oversized, undecodable, of an unknown content type, or failing validation.
    """
    if len(payload) > max_bytes:
        raise PayloadError("oversized", f"{len(payload)} bytes exceeds the {max_bytes}-byte limit")
    message = MESSAGE_TYPES[kind]()
    ct = (content_type or CONTENT_TYPE_PROTOBUF).split(";")[0].strip().lower()
    try:
        if ct == CONTENT_TYPE_PROTOBUF:
            message.ParseFromString(payload)
        elif ct == CONTENT_TYPE_JSON:
            json_format.Parse(payload.decode("utf-8"), message, ignore_unknown_fields=False)
        else:
            raise PayloadError("content_type", f"unsupported content type {ct[:60]!r}")
    except (DecodeError, json_format.ParseError, UnicodeDecodeError, RecursionError) as exc:
        raise PayloadError(
            "undecodable", f"cannot decode {kind.value} payload: {exc!s:.200}"
        ) from exc
    _VALIDATORS[kind](message)
    return message


def _check_ts(ts_ms: int, field: str) -> None:
    if not _MIN_TS_MS <= ts_ms <= _MAX_TS_MS:
        raise PayloadError("invalid", f"{field}={ts_ms} is not a plausible UTC epoch-ms time")


def _check_id(value: str, field: str, *, required: bool = True) -> None:
    if required and not value:
        raise PayloadError("invalid", f"{field} is required")
    if len(value) > _MAX_ID_LEN or any(c in value for c in "/+#\x00"):
        raise PayloadError("invalid", f"{field} is not a valid id")


def _check_text(value: str, field: str) -> None:
    if len(value) > _MAX_TEXT_LEN:
        raise PayloadError("invalid", f"{field} longer than {_MAX_TEXT_LEN} characters")


def _check_counter(value: int, field: str) -> None:
    if value > MAX_COUNTER:
        raise PayloadError("invalid", f"{field} exceeds {MAX_COUNTER}")


def _check_number(value: float, field: str, low: float, high: float) -> None:
    if not (math.isfinite(value) and low <= value <= high):  # also rejects NaN and infinities
        raise PayloadError("invalid", f"{field} must be a finite number in [{low:g}, {high:g}]")


def clean_text(value: str) -> str:
    """``value`` with control, format and unassigned characters (terminal escapes, newlines,
    bidirectional overrides) replaced by U+FFFD, so that no device text can drive a terminal."""
    return "".join("\ufffd" if unicodedata.category(c)[0] == "C" else c for c in value)


def _validate_status(m: Message) -> None:
    assert isinstance(m, device_pb2.DeviceStatus)
    if m.state == device_pb2.DeviceStatus.STATE_UNSPECIFIED:
        raise PayloadError("invalid", "state is required")
    _check_ts(m.ts_ms, "ts_ms")
    _check_counter(m.boot_count, "boot_count")
    _check_counter(m.last_seq, "last_seq")
    _check_counter(m.desired_version, "desired_version")
    seen: set[str] = set()
    for c in m.compartments:
        _check_id(c.compartment_id, "compartments.compartment_id")
        if c.compartment_id in seen:
            raise PayloadError("invalid", "compartments has a duplicate compartment_id")
        seen.add(c.compartment_id)
        if min(c.inner.width_mm, c.inner.height_mm, c.inner.depth_mm) == 0:
            raise PayloadError("invalid", "compartments.inner dimensions must be positive")
    _check_text(m.firmware_version, "firmware_version")
    m.firmware_version = clean_text(m.firmware_version)
    if m.accept not in ("", CONTENT_TYPE_PROTOBUF, CONTENT_TYPE_JSON):
        raise PayloadError(
            "invalid", f"accept must be {CONTENT_TYPE_JSON!r} or {CONTENT_TYPE_PROTOBUF!r}"
        )


def _validate_telemetry(m: Message) -> None:
    assert isinstance(m, device_pb2.Telemetry)
    _check_ts(m.ts_ms, "ts_ms")
    for c in m.compartments:
        _check_id(c.compartment_id, "compartments.compartment_id")
        if c.has_temperature or c.temperature_c != 0:
            _check_number(c.temperature_c, "compartments.temperature_c", *_TEMPERATURE_C)
    _check_number(m.energy_wh, "energy_wh", 0, _MAX_ENERGY_WH)
    _check_number(m.power_w, "power_w", 0, _MAX_POWER_W)
    _check_counter(m.desired_version, "desired_version")


def _validate_event(m: Message) -> None:
    assert isinstance(m, device_pb2.DeviceEvent)
    _check_id(m.event_id, "event_id")
    if not 1 <= m.seq <= MAX_COUNTER:
        raise PayloadError("invalid", f"seq must be 1-{MAX_COUNTER}")
    _check_ts(m.ts_ms, "ts_ms")
    body = m.WhichOneof("body")
    if body is None:
        raise PayloadError("invalid", "event body is required")
    if body == "deposited":
        _check_id(m.deposited.parcel_id, "deposited.parcel_id")
        _check_id(m.deposited.compartment_id, "deposited.compartment_id")
        _check_id(m.deposited.courier_id, "deposited.courier_id", required=False)
    elif body == "picked_up":
        _check_id(m.picked_up.parcel_id, "picked_up.parcel_id")
        _check_id(m.picked_up.compartment_id, "picked_up.compartment_id")
    elif body == "door_changed":
        _check_id(m.door_changed.compartment_id, "door_changed.compartment_id")
    elif body == "alarm":
        _check_id(m.alarm.compartment_id, "alarm.compartment_id", required=False)
        _check_text(m.alarm.detail, "alarm.detail")
        m.alarm.detail = clean_text(m.alarm.detail)
    elif body == "parcel_sorted":
        _check_id(m.parcel_sorted.parcel_id, "parcel_sorted.parcel_id")
        _check_id(m.parcel_sorted.destination, "parcel_sorted.destination")
        _check_id(m.parcel_sorted.chute_id, "parcel_sorted.chute_id")
    elif body == "parcel_rejected":
        _check_id(m.parcel_rejected.parcel_id, "parcel_rejected.parcel_id", required=False)
        _check_id(m.parcel_rejected.chute_id, "parcel_rejected.chute_id", required=False)
        _check_counter(m.parcel_rejected.plan_version, "parcel_rejected.plan_version")
    elif body == "sort_plan_applied":
        _check_counter(m.sort_plan_applied.plan_version, "sort_plan_applied.plan_version")
    elif body == "parcel_screened":
        _validate_screened(m.parcel_screened)
    elif body == "container_moved":
        validate_container_moved(m.container_moved)
    if body == "parcel_sorted":
        _check_counter(m.parcel_sorted.plan_version, "parcel_sorted.plan_version")


_MAX_CONTAINER_PARCELS = 1000


def _validate_screened(s: sorting_pb2.ParcelScreened) -> None:
    _check_id(s.parcel_id, "parcel_screened.parcel_id")
    if s.result not in (s.RESULT_CLEAR, s.RESULT_HOLD):
        raise PayloadError("invalid", "parcel_screened.result must be CLEAR or HOLD")
    _check_text(s.reason, "parcel_screened.reason")
    if s.result == s.RESULT_HOLD and not s.reason.strip():
        raise PayloadError("invalid", "parcel_screened.reason is required for a hold")
    s.reason = clean_text(s.reason)


def validate_container_moved(c: sorting_pb2.ContainerMoved) -> None:
    """Shape checks of a container movement (device event or the driver app's gRPC call).

    Raises:
        PayloadError: reason ``invalid``.
    """
    _check_id(c.container_id, "container_moved.container_id")
    if c.type not in sorting_pb2.ContainerType.values() or c.type == 0:
        raise PayloadError("invalid", "container_moved.type must be BAG, BOX or CAGE")
    if c.action not in sorting_pb2.ContainerAction.values() or c.action == 0:
        raise PayloadError("invalid", "container_moved.action is required")
    _check_id(c.chute_id, "container_moved.chute_id", required=False)
    _check_id(c.vehicle_id, "container_moved.vehicle_id", required=False)
    _check_id(c.site, "container_moved.site", required=False)
    if len(c.parcel_ids) > _MAX_CONTAINER_PARCELS:
        raise PayloadError("invalid", f"container_moved: over {_MAX_CONTAINER_PARCELS} parcels")
    for pid in c.parcel_ids:
        _check_id(pid, "container_moved.parcel_ids")
    if len(set(c.parcel_ids)) != len(c.parcel_ids):
        raise PayloadError("invalid", "container_moved.parcel_ids has duplicates")


def _validate_command(m: Message) -> None:
    assert isinstance(m, device_pb2.Command)
    _check_id(m.command_id, "command_id")
    _check_ts(m.issued_ms, "issued_ms")
    _check_ts(m.expires_ms, "expires_ms")
    body = m.WhichOneof("body")
    if body is None:
        raise PayloadError("invalid", "command body is required")
    if body == "resend_events":
        _check_counter(m.resend_events.from_seq, "resend_events.from_seq")
        _check_counter(m.resend_events.to_seq, "resend_events.to_seq")
    elif body == "update_config":
        _check_config(m.update_config)


def _check_config(c: device_pb2.DeviceConfig) -> None:
    _check_number(c.chilled_min_c, "config.chilled_min_c", *_TEMPERATURE_C)
    _check_number(c.chilled_max_c, "config.chilled_max_c", *_TEMPERATURE_C)


def _validate_command_result(m: Message) -> None:
    assert isinstance(m, device_pb2.CommandResult)
    _check_id(m.command_id, "command_id")
    _check_ts(m.ts_ms, "ts_ms")
    _check_text(m.detail, "detail")
    m.detail = clean_text(m.detail)


def _validate_desired(m: Message) -> None:
    assert isinstance(m, device_pb2.DesiredState)
    if not 1 <= m.version <= MAX_COUNTER:
        raise PayloadError("invalid", f"version must be 1-{MAX_COUNTER}")
    _check_config(m.config)
    _check_ts(m.ts_ms, "ts_ms")
    for r in m.reservations:
        _check_id(r.parcel_id, "reservations.parcel_id")
        _check_id(r.compartment_id, "reservations.compartment_id")
    for c in m.pickup_codes:
        _check_id(c.parcel_id, "pickup_codes.parcel_id")
        _check_id(c.compartment_id, "pickup_codes.compartment_id")
        _check_text(c.code_hash, "pickup_codes.code_hash")
    for cid in m.disabled_compartments:
        _check_id(cid, "disabled_compartments")
    for rule in m.sort_plan:
        _check_id(rule.destination, "sort_plan.destination")
        _check_id(rule.chute_id, "sort_plan.chute_id")
    _check_id(m.exception_chute, "exception_chute", required=False)
    for r in m.reservations:
        _check_id(r.carrier_id, "reservations.carrier_id", required=False)
    if len(m.courier_token_key) not in (0, 32):
        raise PayloadError("invalid", "courier_token_key must be an Ed25519 key (32 bytes)")
    for cred in m.couriers:
        _check_id(cred.courier_id, "couriers.courier_id")
        _check_id(cred.carrier_id, "couriers.carrier_id", required=False)
        if len(cred.code_salt) > 64 or len(cred.code_hash) > 64:
            raise PayloadError("invalid", "couriers: code salt and hash are at most 64 bytes")
        if cred.code_iterations > 10_000_000:
            raise PayloadError("invalid", "couriers.code_iterations must be <= 10000000")
    for courier in m.barred_couriers:
        _check_id(courier, "barred_couriers")
    _check_id(m.hold_chute, "hold_chute", required=False)
    _check_counter(m.sort_plan_version, "sort_plan_version")
    for pid in m.held_parcels:
        _check_id(pid, "held_parcels")


_VALIDATORS = {
    Kind.STATUS: _validate_status,
    Kind.TELEMETRY: _validate_telemetry,
    Kind.EVENT: _validate_event,
    Kind.COMMAND: _validate_command,
    Kind.COMMAND_RESULT: _validate_command_result,
    Kind.DESIRED: _validate_desired,
}
