"""Every cabinet alarm (left open, temperature, sensor faults) and the keypad lockout."""

from __future__ import annotations

import time
from pathlib import Path

from edge.agent import EdgeAgent
from edge.cabinet import CompartmentState
from firmware_sim.cabinet import Fault, SimulatedCabinet
from lockerhub.codes import hash_code
from lockerhub.topics import Kind
from lockerhub.v1 import common_pb2, device_pb2
from tests.edge.conftest import FakeHub, edge_settings, running
from tests.support.broker import BrokerHandle

C = common_pb2
S = CompartmentState
CHILLED = {
    "driver": {
        "compartments": [{"size": "S", "count": 2}, {"size": "M", "count": 1, "chilled": True}]
    },
    "telemetry": {"interval_s": 0.3},
    "door": {"left_open_s": 0.3},
}


def _alarms(hub: FakeHub, kind: int) -> list[device_pb2.AlarmRaised]:
    return [e.alarm for e in hub.events("alarm") if e.alarm.kind == kind]


async def test_door_left_open_and_temperature_alarms(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id, CHILLED)
    sim = SimulatedCabinet(settings.driver.compartment_specs())
    async with FakeHub(mosquitto, device_id) as hub, running(EdgeAgent(settings, sim)):
        open_c01 = device_pb2.OpenCompartment(compartment_id="C01")
        res = await hub.call(hub.command(open_compartment=open_c01))
        assert res.outcome == C.COMMAND_OUTCOME_OPENED
        left = await hub.wait(lambda: _alarms(hub, C.ALARM_KIND_DOOR_LEFT_OPEN))
        assert left[0].active
        assert left[0].compartment_id == "C01"
        await sim.close_door("C01")
        cleared = await hub.wait(lambda: len(_alarms(hub, C.ALARM_KIND_DOOR_LEFT_OPEN)) >= 2)
        assert cleared
        assert not _alarms(hub, C.ALARM_KIND_DOOR_LEFT_OPEN)[1].active
        assert len(_alarms(hub, C.ALARM_KIND_DOOR_LEFT_OPEN)) == 2, "raised once per open"

        await sim.set_temperature("C03", 9.5)
        hot = await hub.wait(lambda: _alarms(hub, C.ALARM_KIND_TEMPERATURE_OUT_OF_RANGE))
        assert hot[0].active
        assert hot[0].compartment_id == "C03"
        sample = await hub.wait(
            lambda: next(
                (
                    c
                    for t in hub.of(Kind.TELEMETRY)
                    for c in t.compartments
                    if c.has_temperature and c.temperature_c == 9.5
                ),
                None,
            )
        )
        assert sample.compartment_id == "C03"
        await sim.set_temperature("C03", 4.0)
        await hub.wait(lambda: len(_alarms(hub, C.ALARM_KIND_TEMPERATURE_OUT_OF_RANGE)) >= 2)
        assert not _alarms(hub, C.ALARM_KIND_TEMPERATURE_OUT_OF_RANGE)[1].active
        ambient = [
            c for t in hub.of(Kind.TELEMETRY) for c in t.compartments if c.compartment_id == "C01"
        ]
        assert not any(c.has_temperature for c in ambient)


async def test_sensor_faults_are_faults_not_parcels(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id)
    sim = SimulatedCabinet(settings.driver.compartment_specs())
    async with FakeHub(mosquitto, device_id) as hub, running(EdgeAgent(settings, sim)) as agent:
        # An item "appears" behind a closed door: the sensor, not a parcel.
        await sim.sensor_glitch("C02", True)
        (glitch,) = await hub.wait(lambda: _alarms(hub, C.ALARM_KIND_SENSOR_FAULT))
        assert glitch.compartment_id == "C02"
        assert agent.compartment("C02").state is S.FREE

        # A broken item sensor during a deposit: no deposit is recorded.
        reserve = device_pb2.ReserveCompartment(parcel_id="P-1", compartment_id="C01")
        await hub.call(hub.command(reserve_compartment=reserve))
        await sim.inject_fault(Fault.BROKEN_ITEM, "C01")
        assert (await sim.courier_deposit("P-1")).opened == "C01"
        await hub.wait(lambda: len(_alarms(hub, C.ALARM_KIND_SENSOR_FAULT)) >= 2)
        assert "unreadable" in _alarms(hub, C.ALARM_KIND_SENSOR_FAULT)[1].detail
        assert agent.compartment("C01").state is S.RESERVED
        assert not hub.events("deposited")


async def test_keypad_lockout_grows_per_compartment_and_survives_restart(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id)  # 3 wrong codes -> 60 s lockout
    sim = SimulatedCabinet(settings.driver.compartment_specs())
    desired = device_pb2.DesiredState(
        version=1,
        ts_ms=hub_now(),
        pickup_codes=[
            device_pb2.SetPickupCode(
                parcel_id="P-9", compartment_id="C01", code_hash=hash_code("13572468")
            )
        ],
    )
    async with FakeHub(mosquitto, device_id) as hub:
        async with running(EdgeAgent(settings, sim)) as agent:
            await hub.publish_desired(desired)
            await hub.wait(lambda: agent.desired_version == 1 or None)
            for _ in range(3):
                await sim.enter_code("000000", "C01")
            lockouts = await hub.wait(
                lambda: (
                    len(_alarms(hub, C.ALARM_KIND_KEYPAD_LOCKOUT)) >= 2
                    and _alarms(hub, C.ALARM_KIND_KEYPAD_LOCKOUT)
                )
            )
            assert {a.compartment_id for a in lockouts} == {"", "C01"}
            assert "60 s" in lockouts[0].detail
            assert agent.keypad_locked()
            assert agent.keypad_locked("C01")
        async with running(EdgeAgent(settings, sim)) as agent:
            assert agent.keypad_locked(), "a restart does not reset the lockout"
            assert agent.keypad_locked("C01")
            # The right code during a lockout opens nothing.
            refused = await sim.recipient_pickup("13572468", timeout_s=0.5)
            assert refused.opened is None
            # The entry was handled (refused as locked out), not merely unanswered yet.
            rejected = await hub.wait_event("pickup_code_rejected", count=4)
            assert rejected[-1].pickup_code_rejected.locked_out
            assert agent.compartment("C01").state is S.OCCUPIED
        await hub.publish_desired(None)  # leave no retained message on the shared broker


def hub_now() -> int:
    return int(time.time() * 1000)


async def test_meter_reset_keeps_the_energy_counter_monotonic(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id, {"telemetry": {"interval_s": 0.2}})
    clock = [0.0]
    sim = SimulatedCabinet(settings.driver.compartment_specs(), monotonic=lambda: clock[0])
    async with FakeHub(mosquitto, device_id) as hub:
        async with running(EdgeAgent(settings, sim)):
            clock[0] = 3600.0  # one hour at 18 W
            await hub.wait(lambda: [t for t in hub.of(Kind.TELEMETRY) if t.energy_wh >= 18])
            await sim.meter_reset()
            seen = len(hub.of(Kind.TELEMETRY))
            await hub.wait(lambda: len(hub.of(Kind.TELEMETRY)) >= seen + 2)  # sampled at 0 Wh
            clock[0] = 7200.0
            await hub.wait(lambda: [t for t in hub.of(Kind.TELEMETRY) if t.energy_wh >= 36])
            energies = [t.energy_wh for t in hub.of(Kind.TELEMETRY)]
            assert energies == sorted(energies), "the reported counter never goes back"
        # The total survives a restart (the meter keeps counting from its reset).
        async with running(EdgeAgent(settings, sim)):
            clock[0] = 7200.0 + 1800
            await hub.wait(lambda: [t for t in hub.of(Kind.TELEMETRY) if t.energy_wh >= 45])
