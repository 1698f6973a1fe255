"""Supervised loops restart after a failure; a failed commit leaves memory as the disk has it."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from edge.desired import RuntimeConfig
from edge.housekeeping import SWEEP_S
from edge.outbox import Outbox
from edge.pickup import PickupGuard
from edge.settings import EdgeSettings
from edge.state import CabinetState
from edge.store import Store
from firmware_sim.cabinet import SimulatedCabinet
from lockerhub.backoff import Backoff
from lockerhub.clock import ManualClock
from lockerhub.supervise import supervise
from lockerhub.v1 import common_pb2, device_pb2
from tests.edge.conftest import FakeHub, edge_settings, running, until
from tests.support.broker import BrokerHandle

C = common_pb2


def counting(restarts: dict[str, int]) -> Callable[[str], None]:
    def count(name: str) -> None:
        restarts[name] = restarts.get(name, 0) + 1

    return count


async def test_a_raising_loop_is_logged_counted_and_restarted_after_its_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    restarts: dict[str, int] = {}
    runs: list[int] = []

    async def loop() -> None:
        runs.append(clock.now_ms())
        if len(runs) < 3:
            raise RuntimeError(f"bug {len(runs)}")

    task = asyncio.create_task(
        supervise(
            "t",
            loop,
            clock=clock,
            on_restart=counting(restarts),
            backoff=Backoff(1, 4, rng=random.Random(1)),
            restart_on_return=False,
        )
    )
    await until(lambda: clock.sleeping == 1)
    assert (len(runs), restarts) == (1, {"t": 1})
    clock.advance(499)  # the first backoff is 0.5..1 s: not over yet
    await asyncio.sleep(0)
    assert len(runs) == 1
    clock.advance(501)
    await until(lambda: restarts == {"t": 2} and clock.sleeping == 1)
    clock.advance(2_000)  # the second backoff is at most 2 s
    await asyncio.wait_for(task, 5)  # the third run returned: the loop is done
    assert len(runs) == 3
    failures = [r for r in caplog.records if r.name == "lockerhub.supervise"]
    assert [r.exc_info is not None for r in failures] == [True, True], "logged with traceback"


async def test_an_error_while_cancelled_is_not_a_restart() -> None:
    clock = ManualClock()
    restarts: dict[str, int] = {}
    started = asyncio.Event()

    async def loop() -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            raise RuntimeError("cleanup failed")

    task = asyncio.create_task(
        supervise(
            "t",
            loop,
            clock=clock,
            on_restart=counting(restarts),
            backoff=Backoff(0.1, 30, rng=random.Random(1)),
        )
    )
    await started.wait()
    task.cancel()
    with pytest.raises(RuntimeError, match="cleanup failed"):
        await task
    assert restarts == {}


async def test_the_agent_restarts_a_failed_housekeeping_loop(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id)
    clock = ManualClock()
    sim = SimulatedCabinet(settings.driver.compartment_specs())
    async with running(EdgeAgent(settings, sim, clock=clock)) as agent:
        sweep = agent.housekeeping.sweep
        calls = 0

        async def flaky() -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("a bug in the sweep")
            await sweep()

        monkeypatch.setattr(agent.housekeeping, "sweep", flaky)
        clock.advance(int(SWEEP_S * 1000))
        await until(lambda: agent.stats.loop_restarts.get("edge-housekeeping") == 1)
        assert agent.stats.housekeeping_sweeps == 0
        # The backoff and the next period pass on the clock; the restarted loop sweeps again.
        for _ in range(3):
            clock.advance(int(SWEEP_S * 1000))
            await asyncio.sleep(0.05)
        await until(lambda: agent.stats.housekeeping_sweeps >= 1)
        assert agent.stats.loop_restarts == {"edge-housekeeping": 1}
        assert agent.connected.is_set(), "the other loops never stopped"


async def _fresh_snapshot(settings: EdgeSettings, specs: object) -> dict[str, object]:
    """The cabinet state as a fresh start would load it from disk."""
    async with Store(settings.storage.path) as store:
        config = RuntimeConfig.from_settings(settings)
        state = CabinetState(
            store,
            Outbox(store),
            specs=specs,  # type: ignore[arg-type]
            config=config,
            guard=PickupGuard(max_failures=1, lockout_ms=1, max_lockout_ms=1),
            clock=ManualClock(),
        )
        await state.load(settings)
        return state.snapshot()


async def test_a_failed_commit_leaves_memory_and_disk_agreeing(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id)
    sim = SimulatedCabinet(settings.driver.compartment_specs())
    async with FakeHub(mosquitto, device_id) as hub, running(EdgeAgent(settings, sim)) as agent:
        reserve = device_pb2.ReserveCompartment(parcel_id="P-1", compartment_id="C01")
        res = await hub.call(hub.command(reserve_compartment=reserve))
        assert res.outcome == C.COMMAND_OUTCOME_APPLIED
        before = agent.state.snapshot()
        assert before == await _fresh_snapshot(settings, agent.state.specs)

        # The store fails every commit that queues a message (a real SQLite error, mid-transaction).
        with sqlite3.connect(settings.storage.path) as db:
            db.execute(
                "CREATE TRIGGER fault BEFORE INSERT ON outbox "
                "BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
            )
        db.close()
        # A wrong code (pickup guard), a deposit (records), a config change (config): each decided
        # in memory, each commit fails.
        await sim.enter_code("000000")
        await until(lambda: agent.stats.loop_restarts.get("edge-inputs", 0) >= 1)
        config = device_pb2.DeviceConfig(door_left_open_s=77)
        await hub.send(hub.command(update_config=config))
        await until(lambda: agent.stats.loop_restarts.get("edge-commands", 0) >= 1)
        await sim.scan("P-1")  # the door opens (hardware), the door event's commit fails
        await until(lambda: agent.stats.loop_restarts.get("edge-inputs", 0) >= 2)

        assert agent.state.snapshot() == before, "a rolled-back commit left memory unchanged"
        assert agent.state.snapshot() == await _fresh_snapshot(settings, agent.state.specs)
        assert agent.config.door_left_open_s != 77
        assert agent.state.pickup.consecutive_failures == 0

        # Once the store works again the restarted loops serve on from the same state.
        with sqlite3.connect(settings.storage.path) as db:
            db.execute("DROP TRIGGER fault")
        db.close()
        await sim.enter_code("000001")
        (rejected,) = await hub.wait_event("pickup_code_rejected")
        assert rejected.pickup_code_rejected.consecutive_failures == 1
        assert agent.state.snapshot() == await _fresh_snapshot(settings, agent.state.specs)
