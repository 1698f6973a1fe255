"""Numbers and text the codec used to let through: counters past int64, non-finite or absurd
readings, and device text that would drive an operator's terminal."""

from __future__ import annotations

import pytest

from lockerhub.codec import (
    CONTENT_TYPE_JSON,
    MAX_COUNTER,
    clean_text,
    decode,
    encode,
    encode_json,
)
from lockerhub.errors import PayloadError
from lockerhub.topics import Kind
from lockerhub.v1 import common_pb2, device_pb2

TS = 1_767_225_600_000
ONLINE = device_pb2.DeviceStatus.STATE_ONLINE


def event(**kw: object) -> device_pb2.DeviceEvent:
    fields: dict[str, object] = {"event_id": "e1", "seq": 1, "ts_ms": TS}
    fields.update(kw)
    if "alarm" not in fields and "picked_up" not in fields:
        fields["door_changed"] = device_pb2.DoorChanged(compartment_id="A01", open=True)
    return device_pb2.DeviceEvent(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("seq", [MAX_COUNTER + 1, 2**63 - 1, 2**63, 2**64 - 1])
def test_seq_beyond_the_counter_range_is_invalid(seq: int) -> None:
    with pytest.raises(PayloadError) as err:
        decode(Kind.EVENT, encode(event(seq=seq)))
    assert err.value.reason == "invalid"
    assert "seq" in str(err.value)
    assert decode(Kind.EVENT, encode(event(seq=MAX_COUNTER)))


@pytest.mark.parametrize("field", ["boot_count", "last_seq", "desired_version"])
def test_status_counters_beyond_the_range_are_invalid(field: str) -> None:
    status = device_pb2.DeviceStatus(state=ONLINE, ts_ms=TS, **{field: 2**64 - 1})
    with pytest.raises(PayloadError, match=field):
        decode(Kind.STATUS, encode(status))
    # Also through the JSON mapping (uint64 travels as a string there).
    with pytest.raises(PayloadError, match=field):
        decode(Kind.STATUS, encode_json(status), content_type=CONTENT_TYPE_JSON)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("energy_wh", float("inf")),
        ("energy_wh", float("nan")),
        ("energy_wh", 1e308),
        ("power_w", float("inf")),
        ("power_w", -1.0),
    ],
)
def test_meter_readings_must_be_finite_and_plausible(field: str, value: float) -> None:
    with pytest.raises(PayloadError, match=field):
        decode(Kind.TELEMETRY, encode(device_pb2.Telemetry(ts_ms=TS, **{field: value})))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 1e308, -273.2])
def test_temperature_must_be_finite_and_plausible(value: float) -> None:
    sample = device_pb2.Telemetry(
        ts_ms=TS,
        compartments=[
            device_pb2.CompartmentStatus(
                compartment_id="C01", has_temperature=True, temperature_c=value
            )
        ],
    )
    with pytest.raises(PayloadError, match="temperature_c"):
        decode(Kind.TELEMETRY, encode(sample))
    with pytest.raises(PayloadError, match="temperature_c"):
        decode(Kind.TELEMETRY, encode_json(sample), content_type=CONTENT_TYPE_JSON)


def test_desired_config_temperatures_must_be_finite() -> None:
    desired = device_pb2.DesiredState(
        version=1, ts_ms=TS, config=device_pb2.DeviceConfig(chilled_max_c=float("inf"))
    )
    with pytest.raises(PayloadError, match="chilled_max_c"):
        decode(Kind.DESIRED, encode(desired))


def test_alarm_detail_is_cleaned_of_terminal_control_at_ingress() -> None:
    hostile = "door\x1b[2J\x1b]0;pwned\x07\nFAKE LINE\r\u202eevil\x00"
    decoded = decode(
        Kind.EVENT,
        encode(
            event(
                alarm=device_pb2.AlarmRaised(
                    kind=common_pb2.ALARM_KIND_DOOR_FORCED, detail=hostile, active=True
                )
            )
        ),
    )
    assert isinstance(decoded, device_pb2.DeviceEvent)
    detail = decoded.alarm.detail
    assert detail.startswith("door")
    assert "FAKE LINE" in detail
    for c in "\x1b\x07\n\r\u202e\x00":
        assert c not in detail
    assert clean_text("9.5 C, Kühlfach 3") == "9.5 C, Kühlfach 3"


def test_command_result_detail_and_firmware_are_cleaned() -> None:
    result = device_pb2.CommandResult(command_id="c1", ts_ms=TS, detail="ok\x1b[31m")
    decoded = decode(Kind.COMMAND_RESULT, encode(result))
    assert isinstance(decoded, device_pb2.CommandResult)
    assert "\x1b" not in decoded.detail
    status = device_pb2.DeviceStatus(state=ONLINE, ts_ms=TS, firmware_version="1.0\n\x1b[0m")
    decoded_status = decode(Kind.STATUS, encode(status))
    assert isinstance(decoded_status, device_pb2.DeviceStatus)
    assert decoded_status.firmware_version == "1.0\ufffd\ufffd[0m"
