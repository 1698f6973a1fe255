"""The cabinet agent end to end through a real mosquitto, with a test-side hub and a sim cabinet."""

from __future__ import annotations

from pathlib import Path

from edge.agent import EdgeAgent
from edge.cabinet import CompartmentState
from edge.housekeeping import SWEEP_S
from firmware_sim.cabinet import SimulatedCabinet
from lockerhub.clock import ManualClock
from lockerhub.codes import hash_code
from lockerhub.topics import Kind
from lockerhub.v1 import common_pb2, device_pb2
from tests.edge.conftest import FakeHub, edge_settings, running, until
from tests.support.broker import BrokerHandle

ONLINE = device_pb2.DeviceStatus.STATE_ONLINE
OFFLINE = device_pb2.DeviceStatus.STATE_OFFLINE
C = common_pb2


def _sim(settings: object) -> SimulatedCabinet:
    return SimulatedCabinet(settings.driver.compartment_specs())  # type: ignore[attr-defined]


async def _reserve(hub: FakeHub, parcel: str, cid: str) -> None:
    res = await hub.call(
        hub.command(
            reserve_compartment=device_pb2.ReserveCompartment(parcel_id=parcel, compartment_id=cid)
        )
    )
    assert res.outcome == C.COMMAND_OUTCOME_APPLIED, res.detail


async def _set_code(hub: FakeHub, parcel: str, cid: str, code: str) -> None:
    res = await hub.call(
        hub.command(
            set_pickup_code=device_pb2.SetPickupCode(
                parcel_id=parcel, compartment_id=cid, code_hash=hash_code(code)
            )
        )
    )
    assert res.outcome == C.COMMAND_OUTCOME_APPLIED, res.detail


async def test_birth_will_and_boot_count_across_restarts(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id)
    async with FakeHub(mosquitto, device_id) as hub:
        for boot in (1, 2):
            async with running(EdgeAgent(settings, _sim(settings))) as agent:
                assert agent.boot_count == boot
                birth = await hub.wait_status(ONLINE, boot)
                assert birth.kind == device_pb2.DEVICE_KIND_CABINET
                assert [c.compartment_id for c in birth.compartments] == ["C01", "C02", "C03"]
                assert birth.compartments[0].size == C.SIZE_CLASS_S
                assert birth.compartments[0].inner.height_mm == 80
                assert birth.compartments[2].size == C.SIZE_CLASS_M
            # A clean shutdown says OFFLINE itself, with this boot's counter.
            await hub.wait_status(OFFLINE, boot)


async def test_deposit_and_pickup_end_to_end(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id)
    sim = _sim(settings)
    async with FakeHub(mosquitto, device_id) as hub, running(EdgeAgent(settings, sim)) as agent:
        await _reserve(hub, "P-1", "C02")
        assert agent.compartment("C02").state is CompartmentState.RESERVED

        # A scan of an unknown parcel opens nothing.
        refused = await sim.courier_deposit("P-unknown", timeout_s=0.3)
        assert refused.opened is None
        await until(lambda: agent.stats.scans_refused == 1)  # handled, not just slow
        assert sim.relay_pulses() == 0

        done = await sim.courier_deposit("P-1")
        assert done.opened == "C02"
        (deposited,) = await hub.wait_event("deposited")
        assert deposited.deposited.parcel_id == "P-1"
        assert deposited.deposited.compartment_id == "C02"
        assert agent.compartment("C02").state is CompartmentState.OCCUPIED
        doors = hub.events("door_changed")
        assert [(d.door_changed.open, d.door_changed.commanded) for d in doors] == [
            (True, True),
            (False, True),
        ]

        await _set_code(hub, "P-1", "C02", "123456")
        got = await sim.recipient_pickup("123456")
        assert got.opened == "C02"
        (picked,) = await hub.wait_event("picked_up")
        assert picked.picked_up.parcel_id == "P-1"
        record = agent.compartment("C02")
        assert record.state is CompartmentState.FREE
        assert record.code_hash is None
        assert sim.relay_pulses("C02") == 2

        # Telemetry reports occupancy and energy.
        tele = await hub.wait(lambda: hub.of(Kind.TELEMETRY))
        assert len(tele[-1].compartments) == 3
        assert tele[-1].energy_wh >= 0

        # Events carry unique ids and increasing seq.
        events = hub.events()
        seqs = [e.seq for e in events]
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == len(seqs)
        assert len({e.event_id for e in events}) == len(events)
        # A sample names the last seq assigned before it (the hub finds a lost last event).
        await hub.wait(lambda: [t for t in hub.of(Kind.TELEMETRY) if t.last_seq >= seqs[-1]])


async def test_deposit_closed_empty_keeps_reservation(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id)
    sim = _sim(settings)
    async with FakeHub(mosquitto, device_id) as hub, running(EdgeAgent(settings, sim)) as agent:
        await _reserve(hub, "P-2", "C01")
        before = {"C01": 0, "C02": 0, "C03": 0}
        await sim.scan("P-2")
        assert (await sim.wait_relay_open(before, 3)).opened == "C01"
        await sim.close_door("C01")
        await hub.wait(lambda: len(hub.events("door_changed")) == 2)
        assert agent.compartment("C01").state is CompartmentState.RESERVED
        assert not hub.events("deposited")


async def test_wrong_code_never_opens_and_locks_keypad(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id)
    sim = _sim(settings)
    async with FakeHub(mosquitto, device_id) as hub, running(EdgeAgent(settings, sim)):
        await _reserve(hub, "P-3", "C01")
        assert (await sim.courier_deposit("P-3")).opened == "C01"
        await hub.wait_event("deposited")
        await _set_code(hub, "P-3", "C01", "24681357")
        pulses = sim.relay_pulses()

        for code in ("000000", "12", "not-a-code"):
            await sim.enter_code(code)
        rejected = await hub.wait_event("pickup_code_rejected", count=3)
        assert [
            (r.pickup_code_rejected.consecutive_failures, r.pickup_code_rejected.locked_out)
            for r in rejected
        ] == [(1, False), (2, False), (3, True)]
        (alarm,) = await hub.wait_event("alarm")
        assert alarm.alarm.kind == C.ALARM_KIND_KEYPAD_LOCKOUT
        assert alarm.alarm.active

        # Locked out: even the right code opens nothing.
        assert (await sim.recipient_pickup("24681357", timeout_s=0.5)).opened is None
        last = await hub.wait_event("pickup_code_rejected", count=4)
        assert last[-1].pickup_code_rejected.locked_out
        assert sim.relay_pulses() == pulses
        # No code ever reaches the wire.
        assert not any(b"24681357" in payload for _, payload in hub.raw if b"pbkdf2" not in payload)


async def test_lockout_ends_after_its_period(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(
        tmp_path, mosquitto, device_id, {"keypad": {"max_failures": 2, "lockout_s": 0.3}}
    )
    sim = _sim(settings)
    clock = ManualClock()
    async with (
        FakeHub(mosquitto, device_id, clock=clock) as hub,
        running(EdgeAgent(settings, sim, clock=clock)) as agent,
    ):
        await _reserve(hub, "P-4", "C03")
        assert (await sim.courier_deposit("P-4")).opened == "C03"
        await _set_code(hub, "P-4", "C03", "111111")
        await sim.enter_code("999999")
        await sim.enter_code("999998")
        await hub.wait_event("pickup_code_rejected", count=2)
        assert agent.keypad_locked()
        clock.advance(299)
        assert agent.keypad_locked()
        clock.advance(2)  # the lockout's time is up: no real time needs to pass
        assert not agent.keypad_locked()
        assert (await sim.recipient_pickup("111111")).opened == "C03"
        await hub.wait_event("picked_up")


async def test_open_command_outcomes(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id)
    sim = _sim(settings)

    def open_(cid: str, **kw: int) -> device_pb2.Command:
        return hub.command(open_compartment=device_pb2.OpenCompartment(compartment_id=cid), **kw)

    async with FakeHub(mosquitto, device_id) as hub, running(EdgeAgent(settings, sim)):
        res = await hub.call(open_("C01"))
        assert (res.outcome, res.relay_fired) == (C.COMMAND_OUTCOME_OPENED, True)

        # Door still open: the relay fires anyway (a broken sensor must not lock a parcel in).
        res = await hub.call(open_("C01"))
        assert (res.outcome, res.relay_fired) == (C.COMMAND_OUTCOME_ALREADY_OPEN, True)
        assert sim.relay_pulses("C01") == 2
        await sim.close_door("C01")

        await sim.inject_fault("jam", "C02")
        res = await hub.call(open_("C02"))
        assert (res.outcome, res.relay_fired) == (C.COMMAND_OUTCOME_JAMMED, True)
        (alarm,) = await hub.wait_event("alarm")
        assert alarm.alarm.kind == C.ALARM_KIND_DOOR_JAMMED
        assert alarm.alarm.compartment_id == "C02"

        res = await hub.call(open_("C03", expires_in_ms=-1_000))
        assert (res.outcome, res.relay_fired) == (C.COMMAND_OUTCOME_EXPIRED, False)
        res = await hub.call(open_("C99"))
        assert (res.outcome, res.relay_fired) == (C.COMMAND_OUTCOME_REJECTED, False)
        assert sim.relay_pulses("C03") == 0
        # Commanded opens are not forced.
        assert not [e for e in hub.events("alarm") if e.alarm.kind == C.ALARM_KIND_DOOR_FORCED]


async def test_duplicate_command_is_not_executed_twice(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id)
    sim = _sim(settings)
    async with FakeHub(mosquitto, device_id) as hub:
        command = hub.command(open_compartment=device_pb2.OpenCompartment(compartment_id="C01"))
        async with running(EdgeAgent(settings, sim)):
            first = await hub.call(command)
            assert first.outcome == C.COMMAND_OUTCOME_OPENED
            await sim.close_door("C01")
            await hub.send(command)
            results = await hub.wait(lambda: len(r := hub.results(command.command_id)) == 2 and r)
            assert results[1] == first
        # Also after a restart (the processed-command table is on disk).
        async with running(EdgeAgent(settings, sim)):
            await hub.send(command)
            await hub.wait(lambda: len(hub.results(command.command_id)) == 3)
        assert sim.relay_pulses("C01") == 1


async def test_reservation_rules(tmp_path: Path, mosquitto: BrokerHandle, device_id: str) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id)
    clock = ManualClock()
    async with (
        FakeHub(mosquitto, device_id, clock=clock) as hub,
        running(EdgeAgent(settings, _sim(settings), clock=clock)) as agent,
    ):

        def reserve(parcel: str, cid: str, expires_ms: int = 0) -> device_pb2.Command:
            body = device_pb2.ReserveCompartment(
                parcel_id=parcel, compartment_id=cid, expires_ms=expires_ms
            )
            return hub.command(reserve_compartment=body)

        assert (await hub.call(reserve("P-5", "C01"))).outcome == C.COMMAND_OUTCOME_APPLIED
        # Another parcel cannot take it; the same parcel cannot hold two compartments.
        assert (await hub.call(reserve("P-6", "C01"))).outcome == C.COMMAND_OUTCOME_REJECTED
        assert (await hub.call(reserve("P-5", "C02"))).outcome == C.COMMAND_OUTCOME_REJECTED
        assert (await hub.call(reserve("P-7", "C09"))).outcome == C.COMMAND_OUTCOME_REJECTED
        cancel = device_pb2.CancelReservation(parcel_id="P-5", compartment_id="C01")
        assert (
            await hub.call(hub.command(cancel_reservation=cancel))
        ).outcome == C.COMMAND_OUTCOME_APPLIED
        assert agent.compartment("C01").state is CompartmentState.FREE
        # A code for a parcel that is not there is refused.
        code = device_pb2.SetPickupCode(
            parcel_id="P-5", compartment_id="C01", code_hash=hash_code("123456")
        )
        assert (
            await hub.call(hub.command(set_pickup_code=code))
        ).outcome == C.COMMAND_OUTCOME_REJECTED
        # A reservation that expires frees the compartment, at the next housekeeping sweep.
        sweeps = agent.stats.housekeeping_sweeps

        async def sweep() -> None:
            nonlocal sweeps
            clock.advance(int(SWEEP_S * 1000))
            await until(lambda: agent.stats.housekeeping_sweeps == sweeps + 1)
            sweeps += 1

        await sweep()
        now = clock.now_ms()
        assert (
            await hub.call(reserve("P-8", "C03", now + 1_500))
        ).outcome == C.COMMAND_OUTCOME_APPLIED
        await sweep()
        assert agent.compartment("C03").state is CompartmentState.RESERVED, "still live"
        await sweep()
        assert agent.compartment("C03").state is CompartmentState.FREE


async def test_forced_open_raises_alarm(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id)
    sim = _sim(settings)
    async with FakeHub(mosquitto, device_id) as hub, running(EdgeAgent(settings, sim)):
        await sim.force_open("C03")
        (door,) = await hub.wait_event("door_changed")
        assert (door.door_changed.open, door.door_changed.commanded) == (True, False)
        (alarm,) = await hub.wait_event("alarm")
        assert alarm.alarm.kind == C.ALARM_KIND_DOOR_FORCED
        assert alarm.alarm.active
        await sim.close_door("C03")
        alarms = await hub.wait_event("alarm", count=2)
        assert not alarms[1].alarm.active


async def test_hostile_command_payloads_are_dropped(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id)
    sim = _sim(settings)
    async with FakeHub(mosquitto, device_id) as hub, running(EdgeAgent(settings, sim)) as agent:
        await hub.publish_raw(b"\xff\xfe not protobuf \x00")
        await hub.publish_raw(b"\x0a" * 70_000)  # oversized
        await hub.publish_raw(b'{"commandId": "x"}', content_type="application/json")  # invalid
        await hub.publish_raw(b"{}", content_type="text/evil")
        await hub.publish_raw(device_pb2.Command(command_id="no-body").SerializeToString())
        deep = b"\x52\x02" * 10_000  # nested garbage
        await hub.publish_raw(deep)
        # Still alive and serving.
        res = await hub.call(
            hub.command(open_compartment=device_pb2.OpenCompartment(compartment_id="C01"))
        )
        assert res.outcome == C.COMMAND_OUTCOME_OPENED
        assert sim.relay_pulses() == 1
        assert sum(agent.stats.dropped_commands.values()) == 6
        assert agent.stats.dropped_commands["oversized"] == 1
