"""Enable/disable, config updates, resend window, interrupted commands, dead boards."""

from __future__ import annotations

from pathlib import Path

from edge.agent import EdgeAgent
from edge.cabinet import CompartmentState
from edge.store import Store
from firmware_sim.cabinet import Fault, SimulatedCabinet
from lockerhub.clock import ManualClock
from lockerhub.v1 import common_pb2, device_pb2
from tests.edge.conftest import FakeHub, edge_settings, running
from tests.edge.test_offline import until
from tests.support.broker import BrokerHandle

C = common_pb2
S = CompartmentState


async def test_disable_enable_and_update_config(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id)
    sim = SimulatedCabinet(settings.driver.compartment_specs())
    async with FakeHub(mosquitto, device_id) as hub, running(EdgeAgent(settings, sim)) as agent:
        off = device_pb2.SetCompartmentEnabled(compartment_id="C02", enabled=False, reason="x")
        assert (await hub.call(hub.command(set_compartment_enabled=off))).outcome == (
            C.COMMAND_OUTCOME_APPLIED
        )
        assert agent.compartment("C02").reported_state() is S.DISABLED
        reserve = device_pb2.ReserveCompartment(parcel_id="P", compartment_id="C02")
        refused = await hub.call(hub.command(reserve_compartment=reserve))
        assert refused.outcome == C.COMMAND_OUTCOME_REJECTED
        assert "disabled" in refused.detail
        on = device_pb2.SetCompartmentEnabled(compartment_id="C02", enabled=True)
        await hub.call(hub.command(set_compartment_enabled=on))
        assert (await hub.call(hub.command(reserve_compartment=reserve))).outcome == (
            C.COMMAND_OUTCOME_APPLIED
        )
        unknown = device_pb2.SetCompartmentEnabled(compartment_id="C99", enabled=False)
        assert (await hub.call(hub.command(set_compartment_enabled=unknown))).outcome == (
            C.COMMAND_OUTCOME_REJECTED
        )

        cfg = device_pb2.DeviceConfig(keypad_max_failures=7, telemetry_interval_s=5)
        assert (await hub.call(hub.command(update_config=cfg))).outcome == (
            C.COMMAND_OUTCOME_APPLIED
        )
        assert agent.config.keypad_max_failures == 7
        hostile = device_pb2.DeviceConfig(keypad_max_failures=100_000, door_left_open_s=60)
        res = await hub.call(hub.command(update_config=hostile))
        assert res.outcome == C.COMMAND_OUTCOME_REJECTED
        assert agent.config.door_left_open_s != 60, "a refused config changes nothing"

    # The config survives a restart.
    async with running(EdgeAgent(settings, sim)) as agent:
        assert agent.config.keypad_max_failures == 7
        assert agent.config.telemetry_interval_s == 5


async def test_resend_events_window(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id, {"storage": {"resend_window": 4}})
    sim = SimulatedCabinet(settings.driver.compartment_specs())
    async with FakeHub(mosquitto, device_id) as hub, running(EdgeAgent(settings, sim)) as agent:
        for _ in range(2):
            await sim.force_open("C01")
            await sim.close_door("C01")
        await hub.wait(lambda: len(hub.events()) >= 8)
        await until(lambda: agent.outbox_depth == 0)
        ok = await hub.call(
            hub.command(resend_events=device_pb2.ResendEvents(from_seq=6, to_seq=8))
        )
        assert ok.outcome == C.COMMAND_OUTCOME_APPLIED
        await hub.wait(lambda: len(hub.events()) >= 11)
        again = [e for e in hub.events()][8:]
        originals = {e.seq: e.event_id for e in hub.events()[:8]}
        assert [e.seq for e in again] == [6, 7, 8]
        assert all(originals[e.seq] == e.event_id for e in again)
        for lo, hi in ((1, 2), (7, 50), (5, 3)):
            res = await hub.call(
                hub.command(resend_events=device_pb2.ResendEvents(from_seq=lo, to_seq=hi))
            )
            assert res.outcome == C.COMMAND_OUTCOME_REJECTED, (lo, hi)


async def test_command_cut_by_a_crash_is_reported_interrupted_and_never_rerun(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id)
    sim = SimulatedCabinet(settings.driver.compartment_specs())
    # What a crash between "started" and the result leaves in the database.
    async with Store(settings.storage.path) as store:
        await store.begin_command("cmd-crashed", 1)
    async with FakeHub(mosquitto, device_id) as hub, running(EdgeAgent(settings, sim)):
        (result,) = await hub.wait(lambda: hub.results("cmd-crashed"))
        assert result.outcome == C.COMMAND_OUTCOME_INTERRUPTED
        # The hub retries the same command: answered, not executed.
        retry = hub.command(
            command_id="cmd-crashed",
            open_compartment=device_pb2.OpenCompartment(compartment_id="C01"),
        )
        await hub.send(retry)
        await hub.wait(lambda: len(hub.results("cmd-crashed")) >= 2)
        assert [r.outcome for r in hub.results("cmd-crashed")] == [
            C.COMMAND_OUTCOME_INTERRUPTED
        ] * 2
        assert sim.relay_pulses() == 0


async def test_dead_board_does_not_stop_start_up(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id, {"driver": {"board_size": 2}})
    sim = SimulatedCabinet(settings.driver.compartment_specs())
    await sim.inject_fault(Fault.DEAD_BOARD, "C03")  # board 1 holds C03 only
    async with FakeHub(mosquitto, device_id) as hub, running(EdgeAgent(settings, sim)) as agent:
        (alarm,) = await hub.wait_event("alarm")
        assert alarm.alarm.kind == C.ALARM_KIND_SENSOR_FAULT
        assert "board 1" in alarm.alarm.detail
        assert agent.compartment("C03").state is S.FAULT
        assert agent.compartment("C01").state is S.FREE
        assert agent.stats.dead_boards == 1


async def test_commands_queued_while_away_are_delivered_and_expired_ones_refused(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id)
    sim = SimulatedCabinet(settings.driver.compartment_specs())
    clock = ManualClock()
    async with FakeHub(mosquitto, device_id, clock=clock) as hub:
        async with running(EdgeAgent(settings, sim, clock=clock)):
            pass  # the persistent session (and its subscription) now exists at the broker
        reserve = hub.command(
            reserve_compartment=device_pb2.ReserveCompartment(parcel_id="P-q", compartment_id="C01")
        )
        late_open = hub.command(
            expires_in_ms=200, open_compartment=device_pb2.OpenCompartment(compartment_id="C02")
        )
        await hub.send(reserve)
        await hub.send(late_open)
        clock.advance(300)  # the open's expiry passes while the cabinet is away
        async with running(EdgeAgent(settings, sim, clock=clock)) as agent:
            (r1,) = await hub.wait(lambda: hub.results(reserve.command_id))
            (r2,) = await hub.wait(lambda: hub.results(late_open.command_id))
            assert r1.outcome == C.COMMAND_OUTCOME_APPLIED
            assert r2.outcome == C.COMMAND_OUTCOME_EXPIRED
            assert agent.compartment("C01").state is S.RESERVED
            assert sim.relay_pulses() == 0
