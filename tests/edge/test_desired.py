"""Desired state applied to compartment records, and the runtime config it may change."""

from __future__ import annotations

import math

import pytest

from edge.cabinet import CompartmentRecord, CompartmentState, Keypad
from edge.desired import RuntimeConfig, apply_desired
from edge.errors import CommandError
from lockerhub.v1 import device_pb2

S = CompartmentState
NOW = 1_000_000_000


def _records(*recs: CompartmentRecord) -> dict[str, CompartmentRecord]:
    return {r.compartment_id: r for r in recs}


def _desired(**kw: object) -> device_pb2.DesiredState:
    return device_pb2.DesiredState(version=2, ts_ms=NOW, **kw)  # type: ignore[arg-type]


def test_reservations_codes_and_disabled_are_applied_whole() -> None:
    records = _records(
        CompartmentRecord(compartment_id="C01"),
        CompartmentRecord(compartment_id="C02", state=S.RESERVED, parcel_id="old"),
        CompartmentRecord(compartment_id="C03"),
        CompartmentRecord(compartment_id="C04"),
    )
    desired = _desired(
        reservations=[device_pb2.ReserveCompartment(parcel_id="P1", compartment_id="C01")],
        pickup_codes=[
            device_pb2.SetPickupCode(
                parcel_id="P3", compartment_id="C03", code_hash="pbkdf2_sha256$x", deadline_ms=5
            )
        ],
        disabled_compartments=["C04", "C99"],
    )
    changed = {
        r.compartment_id: r for r in apply_desired(records, desired, protected=(), now_ms=NOW)
    }
    assert changed["C01"].state is S.RESERVED
    assert changed["C01"].parcel_id == "P1"
    assert changed["C02"].state is S.FREE  # the hub dropped that reservation
    assert changed["C03"].state is S.OCCUPIED
    assert changed["C03"].code_hash == "pbkdf2_sha256$x"
    assert changed["C04"].disabled
    assert changed["C04"].reported_state() is S.DISABLED


def test_local_facts_win_over_the_hubs_picture() -> None:
    deposited = CompartmentRecord(
        compartment_id="C01", state=S.OCCUPIED, parcel_id="P1", local_ms=NOW - 10
    )
    picked = CompartmentRecord(compartment_id="C02", local_ms=NOW - 10)
    occupied_old = CompartmentRecord(compartment_id="C03", state=S.OCCUPIED, parcel_id="P3")
    records = _records(deposited, picked, occupied_old)
    desired = _desired(
        reservations=[device_pb2.ReserveCompartment(parcel_id="P1", compartment_id="C01")],
        pickup_codes=[
            device_pb2.SetPickupCode(parcel_id="P2", compartment_id="C02", code_hash="h"),
        ],
    )
    # C01/C02 changed locally moments ago; C03 holds a parcel the hub no longer lists.
    assert apply_desired(records, desired, protected=(), now_ms=NOW) == []
    # After the grace period, with nothing pending, the hub's word counts (except freeing C03).
    later = apply_desired(records, desired, protected=(), now_ms=NOW + 3_600_000)
    assert {r.compartment_id for r in later} == {"C02"}
    # A pending event protects however old it is.
    assert apply_desired(records, desired, protected={"C02"}, now_ms=NOW + 3_600_000) == []


def test_expired_reservation_in_desired_state_is_not_taken() -> None:
    records = _records(CompartmentRecord(compartment_id="C01"))
    desired = _desired(
        reservations=[
            device_pb2.ReserveCompartment(parcel_id="P", compartment_id="C01", expires_ms=NOW - 1)
        ]
    )
    assert apply_desired(records, desired, protected=(), now_ms=NOW) == []


BASE = RuntimeConfig(
    telemetry_interval_s=60,
    door_left_open_s=120,
    keypad_max_failures=5,
    keypad_lockout_s=300,
    chilled_min_c=2,
    chilled_max_c=6,
)


def test_config_zero_means_keep() -> None:
    merged = BASE.merged(device_pb2.DeviceConfig(door_left_open_s=30, chilled_max_c=8))
    assert merged.door_left_open_s == 30
    assert merged.chilled_max_c == 8
    assert merged.telemetry_interval_s == 60


@pytest.mark.parametrize(
    "config",
    [
        device_pb2.DeviceConfig(door_left_open_s=1),
        device_pb2.DeviceConfig(keypad_max_failures=1000),
        device_pb2.DeviceConfig(chilled_min_c=10, chilled_max_c=5),
        device_pb2.DeviceConfig(chilled_min_c=math.nan),
        device_pb2.DeviceConfig(chilled_max_c=math.inf),
        device_pb2.DeviceConfig(telemetry_interval_s=4_000_000_000),
    ],
)
def test_hostile_config_is_refused_whole(config: device_pb2.DeviceConfig) -> None:
    with pytest.raises(CommandError, match="config"):
        BASE.merged(config)


def test_keypad_lockout_grows_and_round_trips() -> None:
    pad = Keypad(max_failures=2, lockout_ms=1_000, max_lockout_ms=3_000)
    t = 0
    periods = []
    for _ in range(4):
        pad.failure(t)
        verdict = pad.failure(t)
        assert verdict.lockout_started
        periods.append(verdict.lockout_ms)
        t += verdict.lockout_ms
    assert periods == [1_000, 2_000, 3_000, 3_000]
    restored = Keypad(max_failures=2, lockout_ms=1_000, max_lockout_ms=3_000)
    restored.load_json(pad.to_json())
    assert restored.locked(t - 1)
    assert restored.lockouts == 4
    restored.load_json({"failures": "x"})  # malformed: ignored
    assert restored.lockouts == 4
    restored.success()
    assert restored.lockouts == 0
    assert not restored.locked(t - 1)
