"""Background loops are supervised: a loop that raises is counted and restarted after a backoff,
and only cancellation stops it; in a running hub, a failing sweeper does not stop the hub."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from hub.errors import StoreError
from hub.parcels.sweeper import SweepCounts
from lockerhub.backoff import Backoff
from lockerhub.clock import ManualClock
from lockerhub.supervise import keep_cancel, stop, supervise
from lockerhub.v1 import fleet_pb2
from tests.hub.conftest import running_hub, settings_for, tick
from tests.hub.test_flow import online


def restarts_counter() -> Counter:
    return Counter("restarts", "test", ["task"], registry=CollectorRegistry())


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(1.0, 8.0)
    delays = [backoff.next_delay() for _ in range(10)]
    assert all(0.5 <= d <= 8.0 for d in delays)
    backoff.reset()
    assert backoff.next_delay() <= 1.0


async def test_a_failing_loop_is_counted_and_restarted_after_the_backoff() -> None:
    clock, restarts = ManualClock(), restarts_counter()
    runs: list[int] = []
    healthy = asyncio.Event()

    async def loop() -> None:
        runs.append(clock.now_ms())
        if len(runs) < 3:
            raise StoreError("disk I/O error")
        healthy.set()
        await asyncio.Event().wait()  # runs until cancelled

    task = asyncio.create_task(
        supervise(
            "sweeper",
            loop,
            clock=clock,
            on_restart=lambda n: restarts.labels(n).inc(),
            backoff=Backoff(1.0, 2.0),
        )
    )
    await clock.wait_for_sleeps(1)  # failed once, now in its backoff
    assert len(runs) == 1
    assert restarts.labels("sweeper")._value.get() == 1
    clock.advance(1_000)  # the first backoff is at most base (jittered, at least base/2)
    await clock.wait_for_sleeps(2)  # second run failed too, second backoff
    assert len(runs) == 2
    assert restarts.labels("sweeper")._value.get() == 2
    clock.advance(2_000)  # the cap
    async with asyncio.timeout(5):
        await healthy.wait()
    assert len(runs) == 3
    assert restarts.labels("sweeper")._value.get() == 2
    task.cancel()  # the lifespan ends: the supervisor stops with the loop
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.sleeping == 0


async def test_a_loop_that_returns_is_restarted_too() -> None:
    clock, restarts = ManualClock(), restarts_counter()
    calls = 0

    async def loop() -> None:
        nonlocal calls
        calls += 1

    task = asyncio.create_task(
        supervise(
            "once",
            loop,
            clock=clock,
            on_restart=lambda n: restarts.labels(n).inc(),
            backoff=Backoff(1.0, 1.0),
        )
    )
    await clock.wait_for_sleeps(1)
    clock.advance(1_000)
    await clock.wait_for_sleeps(2)
    assert calls == 2
    assert restarts.labels("once")._value.get() == 2
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_store_fault_in_the_sweeper_restarts_it_and_the_hub_keeps_serving(
    tmp_path: Path, mosquitto: Any, site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock()
    settings = settings_for(tmp_path, mosquitto, site, lifecycle={"sweep_interval_s": 60})
    async with running_hub(settings, tmp_path, mosquitto, clock=clock) as hub:
        sweeper = hub.app.sweeper
        real = sweeper.sweep_once
        sweeps = 0

        async def faulty() -> SweepCounts:
            nonlocal sweeps
            sweeps += 1
            if sweeps == 1:
                raise StoreError("database is locked")
            return await real()

        monkeypatch.setattr(sweeper, "sweep_once", faulty)
        restarts = hub.app.metrics.task_restarts.labels("lifecycle-sweeper")
        await tick(clock, 60_000)  # the sweep fails; the supervisor waits its backoff
        assert sweeps == 1
        assert restarts._value.get() == 1
        await tick(clock, 60_000)  # restarted (it sleeps its interval first)
        await tick(clock, 60_000)  # and sweeps again
        assert sweeps == 2
        assert restarts._value.get() == 1
        assert hub.app.metrics.task_restarts.labels("command-sweeper")._value.get() == 0
        sites = await hub.fleet.ListSites(fleet_pb2.ListSitesRequest())
        assert [s.site_id for s in sites.sites] == [site]


async def test_the_snapshot_watcher_runs_on_the_hub_clock(
    tmp_path: Path, mosquitto: Any, site: str
) -> None:
    clock = ManualClock()
    settings = settings_for(tmp_path, mosquitto, site)
    async with running_hub(settings, tmp_path, mosquitto, clock=clock) as hub:
        registry = hub.app.metrics.registry
        labels = {"site": site, "cabinet": "CAB-T"}
        async with hub.cabinet("CAB-T") as cab:
            await cab.birth()
            await online(hub, "CAB-T")
            # Stored, but the snapshot is refreshed only on the watcher's tick.
            assert registry.get_sample_value("lockerhub_cabinet_up", labels) is None
            await tick(clock, int(settings.metrics.snapshot_interval_s * 1000))
            assert registry.get_sample_value("lockerhub_cabinet_up", labels) == 1


class _SwallowsCancel:
    """An awaitable like Python 3.11's ``asyncio.wait_for`` when the result and a cancel land in
    the same loop pass (CPython gh-86296): it returns the result, the cancel is gone."""

    def __init__(self) -> None:
        self.inside = asyncio.Event()

    def __await__(self) -> Any:
        return self._run().__await__()

    async def _run(self) -> str:
        self.inside.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return "response"
        raise AssertionError("unreachable")


async def test_keep_cancel_raises_a_cancel_the_awaited_call_swallowed() -> None:
    swallowing = _SwallowsCancel()
    task = asyncio.create_task(keep_cancel(swallowing))
    await swallowing.inside.wait()
    task.cancel()
    await asyncio.wait([task])
    assert task.cancelled()


async def test_keep_cancel_returns_results_and_keeps_timeouts_timeouts() -> None:
    async def answer() -> str:
        await asyncio.sleep(0)
        return "response"

    assert await keep_cancel(answer()) == "response"
    # Inside asyncio.timeout the re-raised cancel still becomes a TimeoutError, not a cancel of
    # the whole task.
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await keep_cancel(_SwallowsCancel())
    # During a cancel already being handled (a clean-shutdown publish) an answer is an answer.
    current = asyncio.current_task()
    assert current is not None
    current.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(1)
    assert current.cancelling() == 1
    assert await keep_cancel(answer()) == "response"
    current.uncancel()


async def test_stop_waits_for_the_task_and_never_eats_the_callers_cancel() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()  # cleanup that takes a while

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    stopping = asyncio.create_task(stop(task))
    await asyncio.sleep(0.01)
    assert not stopping.done()  # waits for the task's cleanup
    stopping.cancel()  # the caller's own shutdown
    await asyncio.wait([stopping])
    assert stopping.cancelled()
    release.set()
    await asyncio.wait([task])
    assert task.done()


async def test_stop_raises_what_the_task_raised_other_than_the_cancel() -> None:
    async def fails_on_cancel() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise ValueError("cleanup failed") from None

    task = asyncio.create_task(fails_on_cancel())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="cleanup failed"):
        await stop(task)
    with pytest.raises(ValueError, match="cleanup failed"):  # a finished task: its error stands
        await stop(task)
