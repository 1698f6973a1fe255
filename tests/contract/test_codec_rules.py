"""Every validation rule of lockerhub.codec, one table row each, in both encodings.

Each invalid row breaks exactly one rule of an otherwise valid message and names the rule it expects
to fire (the error's reason and message); the valid rows sit on the boundaries (limits reached, not
passed; optional fields empty) so that a rule made stricter fails them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from google.protobuf.message import Message

from lockerhub.codec import (
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_PROTOBUF,
    DEFAULT_MAX_PAYLOAD_BYTES,
    MAX_COUNTER,
    MESSAGE_TYPES,
    clean_text,
    decode,
    encode,
    encode_as,
    encode_json,
)
from lockerhub.errors import PayloadError
from lockerhub.topics import Kind
from lockerhub.v1 import common_pb2, device_pb2

MIN_TS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
MAX_TS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
TS = 1_800_000_000_000
ID64 = "i" * 64
TEXT512 = "t" * 512
MAX_ENERGY_WH = 1e12
MAX_POWER_W = 1e7
MIN_C, MAX_C = -100.0, 150.0
BEYOND = MAX_COUNTER + 1  # 2**53, the first counter JSON and SQLite may not hold exactly


def _dims(w: int = 300, h: int = 200, d: int = 400) -> common_pb2.Dimensions:
    return common_pb2.Dimensions(width_mm=w, height_mm=h, depth_mm=d)


def status() -> device_pb2.DeviceStatus:
    return device_pb2.DeviceStatus(
        state=device_pb2.DeviceStatus.STATE_ONLINE,
        boot_count=3,
        ts_ms=TS,
        kind=device_pb2.DEVICE_KIND_CABINET,
        firmware_version=TEXT512,
        compartments=[
            common_pb2.CompartmentSpec(compartment_id="A01", inner=_dims()),
            common_pb2.CompartmentSpec(compartment_id=ID64, inner=_dims(1, 1, 1)),
        ],
    )


def telemetry() -> device_pb2.Telemetry:
    return device_pb2.Telemetry(
        ts_ms=TS,
        compartments=[device_pb2.CompartmentStatus(compartment_id="A01", door_open=True)],
        energy_wh=0.0,
        power_w=0.0,
        outbox_depth=2,
    )


def event(**body: Message) -> device_pb2.DeviceEvent:
    return device_pb2.DeviceEvent(event_id="e-1", seq=1, ts_ms=TS, **body)  # type: ignore[arg-type]


def deposited() -> device_pb2.DeviceEvent:
    return event(deposited=device_pb2.Deposited(parcel_id="P1", compartment_id="A01"))


def command(**body: Message) -> device_pb2.Command:
    return device_pb2.Command(
        command_id="c-1",
        issued_ms=TS,
        expires_ms=TS + 60_000,
        **body,  # type: ignore[arg-type]
    )


def open_command() -> device_pb2.Command:
    return command(open_compartment=device_pb2.OpenCompartment(compartment_id="A01"))


def command_result() -> device_pb2.CommandResult:
    return device_pb2.CommandResult(
        command_id="c-1",
        outcome=common_pb2.COMMAND_OUTCOME_APPLIED,
        ts_ms=TS,
        relay_fired=True,
        detail=TEXT512,
    )


def desired() -> device_pb2.DesiredState:
    return device_pb2.DesiredState(
        version=1,
        ts_ms=TS,
        reservations=[device_pb2.ReserveCompartment(parcel_id="P1", compartment_id="A01")],
        pickup_codes=[
            device_pb2.SetPickupCode(parcel_id="P2", compartment_id="A02", code_hash=TEXT512)
        ],
        disabled_compartments=["A03", ID64],
        sort_plan=[device_pb2.SortRule(destination="S1", chute_id="CH1")],
        exception_chute="CH9",
    )


# Valid messages: every kind, every event and command body, each limit reached but not passed.
VALID: list[tuple[str, Kind, Callable[[], Message]]] = [
    ("status", Kind.STATUS, status),
    (
        "status-offline-minimal",
        Kind.STATUS,
        lambda: device_pb2.DeviceStatus(state=device_pb2.DeviceStatus.STATE_OFFLINE, ts_ms=MIN_TS),
    ),
    (
        "status-counters-max-accept-json",
        Kind.STATUS,
        lambda: device_pb2.DeviceStatus(
            state=device_pb2.DeviceStatus.STATE_ONLINE,
            ts_ms=TS,
            boot_count=MAX_COUNTER,
            last_seq=MAX_COUNTER,
            desired_version=MAX_COUNTER,
            accept=CONTENT_TYPE_JSON,
        ),
    ),
    (
        "status-accept-protobuf",
        Kind.STATUS,
        lambda: device_pb2.DeviceStatus(
            state=device_pb2.DeviceStatus.STATE_ONLINE, ts_ms=TS, accept=CONTENT_TYPE_PROTOBUF
        ),
    ),
    ("telemetry-zero-power", Kind.TELEMETRY, telemetry),
    (
        "telemetry-range-ends",
        Kind.TELEMETRY,
        lambda: device_pb2.Telemetry(
            ts_ms=TS,
            compartments=[
                device_pb2.CompartmentStatus(
                    compartment_id="A01", has_temperature=True, temperature_c=MIN_C
                ),
                device_pb2.CompartmentStatus(
                    compartment_id="A02", has_temperature=True, temperature_c=MAX_C
                ),
                device_pb2.CompartmentStatus(
                    compartment_id="A03", has_temperature=True, temperature_c=0.0
                ),
                device_pb2.CompartmentStatus(compartment_id="A04", temperature_c=-5.5),
            ],
            energy_wh=MAX_ENERGY_WH,
            power_w=MAX_POWER_W,
            desired_version=MAX_COUNTER,
        ),
    ),
    (
        "telemetry-positive",
        Kind.TELEMETRY,
        lambda: device_pb2.Telemetry(ts_ms=MAX_TS, energy_wh=12.5, power_w=0.001),
    ),
    ("event-deposited", Kind.EVENT, deposited),
    (
        "event-deposited-courier",
        Kind.EVENT,
        lambda: event(
            deposited=device_pb2.Deposited(parcel_id=ID64, compartment_id="A01", courier_id=ID64)
        ),
    ),
    (
        "event-picked-up",
        Kind.EVENT,
        lambda: event(picked_up=device_pb2.PickedUp(parcel_id="P1", compartment_id="A01")),
    ),
    (
        "event-code-rejected",
        Kind.EVENT,
        lambda: event(pickup_code_rejected=device_pb2.PickupCodeRejected(consecutive_failures=2)),
    ),
    (
        "event-door",
        Kind.EVENT,
        lambda: event(door_changed=device_pb2.DoorChanged(compartment_id="A01", open=True)),
    ),
    (
        "event-alarm-cabinet-wide",
        Kind.EVENT,
        lambda: event(
            alarm=device_pb2.AlarmRaised(kind=common_pb2.ALARM_KIND_DOOR_FORCED, detail="")
        ),
    ),
    (
        "event-alarm-compartment",
        Kind.EVENT,
        lambda: event(alarm=device_pb2.AlarmRaised(compartment_id="A01", detail=TEXT512)),
    ),
    (
        "event-sorted",
        Kind.EVENT,
        lambda: event(
            parcel_sorted=device_pb2.ParcelSorted(parcel_id="P1", destination="S1", chute_id="C1")
        ),
    ),
    (
        "event-rejected-no-read",
        Kind.EVENT,
        lambda: event(parcel_rejected=device_pb2.ParcelRejected(reason=1)),
    ),
    (
        "event-rejected",
        Kind.EVENT,
        lambda: event(parcel_rejected=device_pb2.ParcelRejected(parcel_id="P1", chute_id="X")),
    ),
    (
        "event-ts-bounds",
        Kind.EVENT,
        lambda: device_pb2.DeviceEvent(
            event_id=ID64,
            seq=MAX_COUNTER,
            ts_ms=MAX_TS,
            door_changed=device_pb2.DoorChanged(compartment_id="A"),
        ),
    ),
    ("command-open", Kind.COMMAND, open_command),
    (
        "command-reserve",
        Kind.COMMAND,
        lambda: command(
            reserve_compartment=device_pb2.ReserveCompartment(parcel_id="P", compartment_id="A")
        ),
    ),
    (
        "command-cancel",
        Kind.COMMAND,
        lambda: command(cancel_reservation=device_pb2.CancelReservation(parcel_id="P")),
    ),
    (
        "command-code",
        Kind.COMMAND,
        lambda: command(set_pickup_code=device_pb2.SetPickupCode(code_hash="h")),
    ),
    (
        "command-enable",
        Kind.COMMAND,
        lambda: command(set_compartment_enabled=device_pb2.SetCompartmentEnabled(enabled=True)),
    ),
    (
        "command-resend",
        Kind.COMMAND,
        lambda: command(resend_events=device_pb2.ResendEvents(from_seq=1, to_seq=2)),
    ),
    (
        "command-resend-max",
        Kind.COMMAND,
        lambda: command(
            resend_events=device_pb2.ResendEvents(from_seq=MAX_COUNTER, to_seq=MAX_COUNTER)
        ),
    ),
    (
        "command-config-edges",
        Kind.COMMAND,
        lambda: device_pb2.Command(
            command_id=ID64,
            issued_ms=MIN_TS,
            expires_ms=MAX_TS,
            update_config=device_pb2.DeviceConfig(telemetry_interval_s=5),
        ),
    ),
    (
        "command-config-range-ends",
        Kind.COMMAND,
        lambda: command(
            update_config=device_pb2.DeviceConfig(chilled_min_c=MIN_C, chilled_max_c=MAX_C)
        ),
    ),
    ("command-result", Kind.COMMAND_RESULT, command_result),
    (
        "command-result-minimal",
        Kind.COMMAND_RESULT,
        lambda: device_pb2.CommandResult(command_id=ID64, ts_ms=MIN_TS),
    ),
    ("desired", Kind.DESIRED, desired),
    (
        "desired-empty",
        Kind.DESIRED,
        lambda: device_pb2.DesiredState(version=MAX_COUNTER, ts_ms=MAX_TS),
    ),
    (
        "desired-config-range-ends",
        Kind.DESIRED,
        lambda: device_pb2.DesiredState(
            version=1,
            ts_ms=TS,
            config=device_pb2.DeviceConfig(chilled_min_c=MAX_C, chilled_max_c=MIN_C),
        ),
    ),
]

ENCODINGS = [
    pytest.param(encode, None, id="binary"),
    pytest.param(encode, CONTENT_TYPE_PROTOBUF, id="binary-explicit"),
    pytest.param(encode_json, CONTENT_TYPE_JSON, id="json"),
    pytest.param(encode_json, "Application/JSON ; charset=utf-8", id="json-params"),
]


def test_the_tables_cover_every_kind() -> None:
    assert {kind for _, kind, _ in VALID} == set(Kind) == set(MESSAGE_TYPES)
    assert {row[0] for row in INVALID} == set(Kind)


@pytest.mark.parametrize(("name", "kind", "build"), [pytest.param(*v, id=v[0]) for v in VALID])
@pytest.mark.parametrize(("enc", "content_type"), ENCODINGS)
def test_valid_messages_decode_to_themselves(
    name: str,
    kind: Kind,
    build: Callable[[], Message],
    enc: Callable[[Message], bytes],
    content_type: str | None,
) -> None:
    msg = build()
    decoded = decode(kind, enc(msg), content_type=content_type)
    assert type(decoded) is MESSAGE_TYPES[kind]
    assert decoded == msg


@dataclass(frozen=True)
class Break:
    """Apply ``change`` to a valid message; ``rule`` is the message the validator must give."""

    change: Callable[[Message], object]
    rule: str


def _set(path: str, value: object) -> Callable[[Message], object]:
    def change(msg: Message) -> None:
        *parents, last = path.split(".")
        target = msg
        for p in parents:
            target = getattr(target, p)
        setattr(target, last, value)

    return change


def _clear(field: str) -> Callable[[Message], object]:
    return lambda msg: msg.ClearField(field)


def _append(field: str, item: Message | str) -> Callable[[Message], object]:
    return lambda msg: getattr(msg, field).append(item)


def _ts_rules(field: str, path: str | None = None) -> list[tuple[str, Break]]:
    path = path or field
    rule = f"{field}=%d is not a plausible UTC epoch-ms time"
    return [
        (f"{field}-zero", Break(_set(path, 0), rule % 0)),
        (f"{field}-before-2020", Break(_set(path, MIN_TS - 1), rule % (MIN_TS - 1))),
        (f"{field}-after-2100", Break(_set(path, MAX_TS + 1), rule % (MAX_TS + 1))),
    ]


def _id_rules(path: str, field: str, *, required: bool = True) -> list[tuple[str, Break]]:
    """Each way an id can be wrong; ``field`` is how the validator names it."""
    out = [
        (f"{field}-too-long", Break(_set(path, "i" * 65), f"{field} is not a valid id")),
        *[
            (f"{field}-has-{name}", Break(_set(path, f"a{char}b"), f"{field} is not a valid id"))
            for name, char in (("slash", "/"), ("plus", "+"), ("hash", "#"), ("nul", "\x00"))
        ],
    ]
    if required:
        out.append((f"{field}-missing", Break(_set(path, ""), f"{field} is required")))
    return out


def _text_rule(path: str, field: str) -> list[tuple[str, Break]]:
    return [(f"{field}-too-long", Break(_set(path, "t" * 513), f"{field} longer than 512"))]


def _counter_rules(path: str, field: str) -> list[tuple[str, Break]]:
    """A counter one past MAX_COUNTER (and the largest uint64) is refused naming the counter."""
    rule = f"{field} exceeds 9007199254740991"
    return [
        (f"{field}-beyond-max", Break(_set(path, BEYOND), rule)),
        (f"{field}-uint64-max", Break(_set(path, 2**64 - 1), rule)),
    ]


def _number_rules(
    change: Callable[[float], Callable[[Message], object]],
    field: str,
    low: float,
    high: float,
    rule: str,
) -> list[tuple[str, Break]]:
    """Just outside each end of the range, and every non-finite value."""
    return [
        (f"{field}-below", Break(change(math.nextafter(low, -math.inf)), rule)),
        (f"{field}-above", Break(change(math.nextafter(high, math.inf)), rule)),
        (f"{field}-nan", Break(change(math.nan), rule)),
        (f"{field}-inf", Break(change(math.inf), rule)),
        (f"{field}-minus-inf", Break(change(-math.inf), rule)),
    ]


def _setter(path: str) -> Callable[[float], Callable[[Message], object]]:
    return lambda value: _set(path, value)


def _config_rules(prefix: str) -> list[tuple[str, Break]]:
    """The chilled range of a DeviceConfig at ``prefix`` (the validator calls it ``config``)."""
    return [
        rule
        for f in ("chilled_min_c", "chilled_max_c")
        for rule in _number_rules(
            _setter(f"{prefix}.{f}"),
            f"config.{f}",
            MIN_C,
            MAX_C,
            f"config.{f} must be a finite number in [-100, 150]",
        )
    ]


def _rows(
    kind: Kind, build: Callable[[], Message], rules: list[tuple[str, Break]]
) -> list[tuple[Kind, str, Callable[[], Message], Callable[[Message], object], str]]:
    return [(kind, name, build, b.change, b.rule) for name, b in rules]


def _nested_set(repeated: str, index: int, path: str, value: object) -> Callable[[Message], None]:
    def change(msg: Message) -> None:
        target = getattr(msg, repeated)[index]
        *parents, last = path.split(".")
        for p in parents:
            target = getattr(target, p)
        setattr(target, last, value)

    return change


def _nested_ids(repeated: str, item: str, field: str, index: int = 0) -> list[tuple[str, Break]]:
    """The id rules for ``item`` of element ``index`` of a repeated field."""
    return [
        (f"{field}-{name}", Break(_nested_set(repeated, index, item, value), rule))
        for name, value, rule in [
            ("too-long", "i" * 65, f"{field} is not a valid id"),
            ("has-slash", "a/b", f"{field} is not a valid id"),
            ("has-hash", "a#", f"{field} is not a valid id"),
            ("missing", "", f"{field} is required"),
        ]
    ]


def chilled_telemetry() -> device_pb2.Telemetry:
    return device_pb2.Telemetry(
        ts_ms=TS,
        compartments=[
            device_pb2.CompartmentStatus(compartment_id="A01"),
            device_pb2.CompartmentStatus(
                compartment_id="A02", has_temperature=True, temperature_c=4.0
            ),
        ],
    )


def _temperature(value: float) -> Callable[[Message], object]:
    return _nested_set("compartments", 1, "temperature_c", value)


def resend_command() -> device_pb2.Command:
    return command(resend_events=device_pb2.ResendEvents(from_seq=1, to_seq=2))


def config_command() -> device_pb2.Command:
    return command(update_config=device_pb2.DeviceConfig(chilled_min_c=2.0, chilled_max_c=8.0))


def _body_ids(
    body: str, fields: list[str], optional: tuple[str, ...] = ()
) -> list[tuple[str, Break]]:
    out: list[tuple[str, Break]] = []
    for f in fields:
        out += _id_rules(f"{body}.{f}", f"{body}.{f}", required=f not in optional)
    return out


def _event_with(body: str, **fields: str) -> Callable[[], Message]:
    types = {
        "deposited": device_pb2.Deposited,
        "picked_up": device_pb2.PickedUp,
        "door_changed": device_pb2.DoorChanged,
        "alarm": device_pb2.AlarmRaised,
        "parcel_sorted": device_pb2.ParcelSorted,
        "parcel_rejected": device_pb2.ParcelRejected,
    }
    return lambda: event(**{body: types[body](**fields)})


INVALID = [
    # DeviceStatus
    *_rows(
        Kind.STATUS,
        status,
        [
            ("state-unspecified", Break(_set("state", 0), "state is required")),
            *_ts_rules("ts_ms"),
            *_nested_ids("compartments", "compartment_id", "compartments.compartment_id", 1),
            (
                "duplicate-compartment",
                Break(_nested_set("compartments", 1, "compartment_id", "A01"), "duplicate"),
            ),
            *[
                (
                    f"zero-{axis}",
                    Break(
                        _nested_set("compartments", 1, f"inner.{axis}", 0),
                        "compartments.inner dimensions must be positive",
                    ),
                )
                for axis in ("width_mm", "height_mm", "depth_mm")
            ],
            *_text_rule("firmware_version", "firmware_version"),
            *_counter_rules("boot_count", "boot_count"),
            *_counter_rules("last_seq", "last_seq"),
            *_counter_rules("desired_version", "desired_version"),
            *[
                (
                    f"accept-{name}",
                    Break(
                        _set("accept", value),
                        "accept must be 'application/json' or 'application/x-protobuf'",
                    ),
                )
                for name, value in (
                    ("text", "text/plain"),
                    ("json-upper", "Application/JSON"),
                    ("json-params", "application/json; charset=utf-8"),
                    ("protobuf-padded", " application/x-protobuf"),
                )
            ],
        ],
    ),
    # Telemetry
    *_rows(
        Kind.TELEMETRY,
        telemetry,
        [
            *_ts_rules("ts_ms"),
            *_nested_ids("compartments", "compartment_id", "compartments.compartment_id"),
            *_number_rules(
                _setter("energy_wh"),
                "energy_wh",
                0.0,
                MAX_ENERGY_WH,
                "energy_wh must be a finite number in [0, 1e+12]",
            ),
            *_number_rules(
                _setter("power_w"),
                "power_w",
                0.0,
                MAX_POWER_W,
                "power_w must be a finite number in [0, 1e+07]",
            ),
            *_counter_rules("desired_version", "desired_version"),
        ],
    ),
    *_rows(
        Kind.TELEMETRY,
        chilled_telemetry,
        [
            *_number_rules(
                _temperature,
                "temperature_c",
                MIN_C,
                MAX_C,
                "compartments.temperature_c must be a finite number in [-100, 150]",
            ),
            # A reading without has_temperature is still checked when it is not the default 0.
            (
                "temperature-without-flag",
                Break(
                    _nested_set("compartments", 0, "temperature_c", MAX_C + 1),
                    "compartments.temperature_c must be a finite number in [-100, 150]",
                ),
            ),
        ],
    ),
    # DeviceEvent: envelope
    *_rows(
        Kind.EVENT,
        deposited,
        [
            *_id_rules("event_id", "event_id"),
            ("seq-zero", Break(_set("seq", 0), "seq must be 1-9007199254740991")),
            ("seq-beyond-max", Break(_set("seq", BEYOND), "seq must be 1-9007199254740991")),
            ("seq-uint64-max", Break(_set("seq", 2**64 - 1), "seq must be 1-9007199254740991")),
            *_ts_rules("ts_ms"),
            ("no-body", Break(_clear("deposited"), "event body is required")),
            *_body_ids("deposited", ["parcel_id", "compartment_id", "courier_id"], ("courier_id",)),
        ],
    ),
    *_rows(
        Kind.EVENT,
        _event_with("picked_up", parcel_id="P", compartment_id="A"),
        _body_ids("picked_up", ["parcel_id", "compartment_id"]),
    ),
    *_rows(
        Kind.EVENT,
        _event_with("door_changed", compartment_id="A"),
        _body_ids("door_changed", ["compartment_id"]),
    ),
    *_rows(
        Kind.EVENT,
        _event_with("alarm", compartment_id="A"),
        [
            *_body_ids("alarm", ["compartment_id"], ("compartment_id",)),
            *_text_rule("alarm.detail", "alarm.detail"),
        ],
    ),
    *_rows(
        Kind.EVENT,
        _event_with("parcel_sorted", parcel_id="P", destination="D", chute_id="C"),
        _body_ids("parcel_sorted", ["parcel_id", "destination", "chute_id"]),
    ),
    *_rows(
        Kind.EVENT,
        _event_with("parcel_rejected", parcel_id="P", chute_id="C"),
        _body_ids("parcel_rejected", ["parcel_id", "chute_id"], ("parcel_id", "chute_id")),
    ),
    # Command
    *_rows(
        Kind.COMMAND,
        open_command,
        [
            *_id_rules("command_id", "command_id"),
            *_ts_rules("issued_ms"),
            *_ts_rules("expires_ms"),
            ("no-body", Break(_clear("open_compartment"), "command body is required")),
        ],
    ),
    *_rows(
        Kind.COMMAND,
        resend_command,
        [
            *_counter_rules("resend_events.from_seq", "resend_events.from_seq"),
            *_counter_rules("resend_events.to_seq", "resend_events.to_seq"),
        ],
    ),
    *_rows(Kind.COMMAND, config_command, _config_rules("update_config")),
    # CommandResult
    *_rows(
        Kind.COMMAND_RESULT,
        command_result,
        [
            *_id_rules("command_id", "command_id"),
            *_ts_rules("ts_ms"),
            *_text_rule("detail", "detail"),
        ],
    ),
    # DesiredState
    *_rows(
        Kind.DESIRED,
        desired,
        [
            ("version-zero", Break(_set("version", 0), "version must be 1-9007199254740991")),
            (
                "version-beyond-max",
                Break(_set("version", BEYOND), "version must be 1-9007199254740991"),
            ),
            (
                "version-uint64-max",
                Break(_set("version", 2**64 - 1), "version must be 1-9007199254740991"),
            ),
            *_config_rules("config"),
            *_ts_rules("ts_ms"),
            *_nested_ids("reservations", "parcel_id", "reservations.parcel_id"),
            *_nested_ids("reservations", "compartment_id", "reservations.compartment_id"),
            *_nested_ids("pickup_codes", "parcel_id", "pickup_codes.parcel_id"),
            *_nested_ids("pickup_codes", "compartment_id", "pickup_codes.compartment_id"),
            (
                "code-hash-too-long",
                Break(
                    _nested_set("pickup_codes", 0, "code_hash", "h" * 513),
                    "pickup_codes.code_hash longer than 512",
                ),
            ),
            (
                "disabled-missing",
                Break(_append("disabled_compartments", ""), "disabled_compartments is required"),
            ),
            (
                "disabled-bad",
                Break(_append("disabled_compartments", "a+b"), "disabled_compartments is not a"),
            ),
            *_nested_ids("sort_plan", "destination", "sort_plan.destination"),
            *_nested_ids("sort_plan", "chute_id", "sort_plan.chute_id"),
            *_id_rules("exception_chute", "exception_chute", required=False),
        ],
    ),
]


@pytest.mark.parametrize(
    ("kind", "name", "build", "change", "rule"),
    [pytest.param(*row, id=f"{row[0].value}-{row[1]}") for row in INVALID],
)
@pytest.mark.parametrize(("enc", "content_type"), ENCODINGS[::2])
def test_each_rule_refuses_with_its_own_message(
    kind: Kind,
    name: str,
    build: Callable[[], Message],
    change: Callable[[Message], object],
    rule: str,
    enc: Callable[[Message], bytes],
    content_type: str | None,
) -> None:
    msg = build()
    decode(kind, enc(msg), content_type=content_type)  # valid before the change
    change(msg)
    with pytest.raises(PayloadError, match=re.escape(rule)) as err:
        decode(kind, enc(msg), content_type=content_type)
    assert err.value.reason == "invalid"


@pytest.mark.parametrize(
    ("kind", "build", "read"),
    [
        pytest.param(
            Kind.STATUS,
            lambda text: device_pb2.DeviceStatus(
                state=device_pb2.DeviceStatus.STATE_ONLINE, ts_ms=TS, firmware_version=text
            ),
            lambda m: m.firmware_version,
            id="status-firmware_version",
        ),
        pytest.param(
            Kind.EVENT,
            lambda text: event(alarm=device_pb2.AlarmRaised(detail=text)),
            lambda m: m.alarm.detail,
            id="event-alarm-detail",
        ),
        pytest.param(
            Kind.COMMAND_RESULT,
            lambda text: device_pb2.CommandResult(command_id="c-1", ts_ms=TS, detail=text),
            lambda m: m.detail,
            id="command-result-detail",
        ),
    ],
)
@pytest.mark.parametrize(("enc", "content_type"), ENCODINGS[::2])
def test_device_text_is_cleaned_at_ingress(
    kind: Kind,
    build: Callable[[str], Message],
    read: Callable[[Message], str],
    enc: Callable[[Message], bytes],
    content_type: str | None,
) -> None:
    # Control (Cc), format (Cf) and unassigned (Cn) characters become U+FFFD, one for one;
    # letters, digits, punctuation, symbols and spaces of any script stay.
    hostile = "a\x1b[2J\x00\n\r\t\x7f\u202e\u200b\U000e0001\u0378z"
    kept = "9.5 °C, Kühlfach 3 — 冷蔵 ✓"
    decoded = decode(kind, enc(build(hostile + kept)), content_type=content_type)
    assert read(decoded) == "a\ufffd[2J" + "\ufffd" * 9 + "z" + kept
    assert clean_text(kept) == kept
    assert clean_text("") == ""


@pytest.mark.parametrize(
    ("accept", "json_out"),
    [(CONTENT_TYPE_JSON, True), (CONTENT_TYPE_PROTOBUF, False), ("", False)],
)
def test_encode_as_follows_the_device_accept(accept: str, json_out: bool) -> None:
    msg = open_command()
    out = encode_as(msg, accept)
    assert out == (encode_json(msg) if json_out else encode(msg))
    assert out != (encode(msg) if json_out else encode_json(msg))


def test_optional_ids_may_be_empty() -> None:
    for msg in (
        event(deposited=device_pb2.Deposited(parcel_id="P", compartment_id="A", courier_id="")),
        event(parcel_rejected=device_pb2.ParcelRejected()),
        event(alarm=device_pb2.AlarmRaised()),
    ):
        assert decode(Kind.EVENT, encode(msg)) == msg
    assert decode(Kind.DESIRED, encode(device_pb2.DesiredState(version=1, ts_ms=TS))).version == 1


@pytest.mark.parametrize("kind", list(Kind))
def test_size_limit_is_inclusive(kind: Kind) -> None:
    payload = encode(dict((k, b()) for _, k, b in VALID)[kind])
    assert decode(kind, payload, max_bytes=len(payload)) is not None
    with pytest.raises(PayloadError, match=f"{len(payload)} bytes exceeds the") as err:
        decode(kind, payload, max_bytes=len(payload) - 1)
    assert err.value.reason == "oversized"


def test_default_size_limit_is_64_kib() -> None:
    assert DEFAULT_MAX_PAYLOAD_BYTES == 65_536
    msg = device_pb2.CommandResult(command_id="c", ts_ms=TS)
    # Unknown fields of a valid message pad the payload to exactly the limit, then one past it.
    base = encode(msg)
    pad = DEFAULT_MAX_PAYLOAD_BYTES - len(base) - 4  # tag (1) + 3-byte length
    filler = b"\x7a" + bytes([0x80 | (pad & 0x7F), 0x80 | ((pad >> 7) & 0x7F), pad >> 14])
    payload = base + filler + b"x" * pad
    assert len(payload) == DEFAULT_MAX_PAYLOAD_BYTES
    assert decode(Kind.COMMAND_RESULT, payload).command_id == "c"
    with pytest.raises(PayloadError) as err:
        decode(Kind.COMMAND_RESULT, payload + b"\x00")
    assert err.value.reason == "oversized"


@pytest.mark.parametrize(
    ("content_type", "reason"),
    [
        ("text/plain", "content_type"),
        ("application/x-protobuf; charset=utf-8", None),
        ("APPLICATION/X-PROTOBUF", None),
        ("", None),  # no content type property: protobuf
        (None, None),
    ],
)
def test_content_types(content_type: str | None, reason: str | None) -> None:
    payload = encode(open_command())
    if reason is None:
        assert decode(Kind.COMMAND, payload, content_type=content_type) == open_command()
        return
    with pytest.raises(PayloadError, match="unsupported content type") as err:
        decode(Kind.COMMAND, payload, content_type=content_type)
    assert err.value.reason == reason


@pytest.mark.parametrize("kind", list(Kind))
def test_undecodable_bytes_name_the_kind(kind: Kind) -> None:
    with pytest.raises(PayloadError, match=f"cannot decode {kind.value} payload") as err:
        decode(kind, b"\x0a\xff")
    assert err.value.reason == "undecodable"
    with pytest.raises(PayloadError) as err:
        decode(kind, b'{"noSuchField": 1}', content_type=CONTENT_TYPE_JSON)
    assert err.value.reason == "undecodable"
