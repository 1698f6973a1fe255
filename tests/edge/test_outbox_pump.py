"""The outbox pump, driven by a virtual timer: replay pacing and burst, batching, idle waiting.

No test sleeps in real time: the pump's timer is a ``VirtualTimer`` whose ``sleep`` records the
delay and moves its time forward, so the pacing is asserted exactly. The store is the real SQLite
one, wrapped to record how the pump calls it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from edge.outbox import LoopTimer, Outbox
from edge.store import OutboxEntry, Store
from lockerhub.clock import ManualClock
from lockerhub.topics import Kind
from lockerhub.v1 import device_pb2

T0 = 1000.0  # virtual seconds; a binary fraction, so every pacing step below is exact


class VirtualTimer:
    """The pump's monotonic time and sleep, moved only by the pump's own sleeps and the test."""

    def __init__(self) -> None:
        self.now = T0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class RecordingStore(Store):
    """The real store; records peeks and acks, and refuses more peeks than the test allows."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.peek_limits: list[int] = []
        self.peeks_done = 0
        self.allowed_peeks = 1_000_000
        self.acks: list[tuple[list[int], int]] = []

    async def outbox_peek(self, limit: int = 100) -> list[OutboxEntry]:
        self.peek_limits.append(limit)
        if len(self.peek_limits) > self.allowed_peeks:
            raise AssertionError("the pump polled the store with nothing to do")
        entries = await super().outbox_peek(limit)
        self.peeks_done += 1
        return entries

    async def outbox_ack(self, *entry_ids: int, now_ms: int = 0) -> None:
        self.acks.append((list(entry_ids), now_ms))
        await super().outbox_ack(*entry_ids, now_ms=now_ms)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RecordingStore]:
    async with RecordingStore(tmp_path / "outbox.sqlite3") as s:
        yield s


def _events(n: int) -> list[device_pb2.DeviceEvent]:
    return [
        device_pb2.DeviceEvent(door_changed=device_pb2.DoorChanged(compartment_id="C01"))
        for _ in range(n)
    ]


class Recorder:
    """A publish callback that records (seq, virtual time) and says when ``n`` arrived."""

    def __init__(self, timer: VirtualTimer | None, n: int) -> None:
        self.timer = timer
        self.n = n
        self.sent: list[tuple[int, float]] = []
        self.done = asyncio.Event()

    async def __call__(self, kind: Kind, payload: bytes) -> None:
        assert kind is Kind.EVENT
        seq = device_pb2.DeviceEvent.FromString(payload).seq
        self.sent.append((seq, self.timer.now if self.timer else 0.0))
        if len(self.sent) >= self.n:
            self.done.set()


async def _until(predicate: Callable[[], bool]) -> None:
    """Let the loop run until ``predicate`` holds (bounded, so a bug fails instead of hanging)."""
    async with asyncio.timeout(10):
        while not predicate():
            await asyncio.sleep(0)


async def _stop(task: asyncio.Task[None]) -> None:
    assert not task.done(), task.exception() if task.done() else None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_replay_is_paced_at_the_rate(store: RecordingStore) -> None:
    await store.commit(now_ms=1, events=_events(6))
    timer = VirtualTimer()
    outbox = Outbox(store, timer=timer)
    publish = Recorder(timer, 6)
    task = asyncio.create_task(outbox.pump(publish, rate_per_s=4.0))
    await _until(publish.done.is_set)
    await _stop(task)
    # A fresh pump has no burst credit: one entry every 1/4 s from the start.
    assert publish.sent == [(i + 1, T0 + 0.25 * i) for i in range(6)]
    assert timer.sleeps == [0.25] * 5


async def test_after_an_idle_spell_a_burst_of_ten_goes_at_once(store: RecordingStore) -> None:
    timer = VirtualTimer()
    outbox = Outbox(store, timer=timer)
    publish = Recorder(timer, 14)
    task = asyncio.create_task(outbox.pump(publish, rate_per_s=4.0))
    await _until(lambda: store.peeks_done == 1)
    timer.now = T0 + 10.0  # ten seconds idle: more than the burst's 10 entries' worth of credit
    await store.commit(now_ms=2, events=_events(14))
    outbox.notify()
    await _until(publish.done.is_set)
    await _stop(task)
    t = T0 + 10.0
    # The burst (10 entries) plus the slot that is due now, then 1/4 s apart again.
    assert publish.sent == [
        *[(seq, t) for seq in range(1, 12)],
        (12, t + 0.25),
        (13, t + 0.5),
        (14, t + 0.75),
    ]
    assert timer.sleeps == [0.25, 0.25, 0.25]


async def test_an_idle_pump_waits_for_notify_instead_of_polling(store: RecordingStore) -> None:
    clock = ManualClock(start_ms=1_800_000_000_000)
    outbox = Outbox(store, clock=clock, timer=VirtualTimer())
    publish = Recorder(None, 2)
    store.allowed_peeks = 1
    task = asyncio.create_task(outbox.pump(publish))
    # The pump found nothing and waits: a polling pump would have peeked again and failed.
    await _until(lambda: store.peeks_done == 1)
    assert not task.done()

    await store.commit(now_ms=5, events=_events(2))
    assert outbox.depth == 2
    store.allowed_peeks = 3  # one to take the two entries, one to find the outbox empty
    outbox.notify()
    await _until(lambda: store.peeks_done == 3)
    assert [seq for seq, _ in publish.sent] == [1, 2]
    assert not task.done(), "after the backlog the pump waits again"
    assert store.acks == [([1, 2], clock.now_ms())]
    assert outbox.depth == 0
    assert outbox.published == 2

    # It stays usable: a later notify wakes it again.
    await store.commit(now_ms=6, events=_events(1))
    store.allowed_peeks = 5
    outbox.notify()
    await _until(lambda: store.peeks_done == 5)
    assert [seq for seq, _ in publish.sent] == [1, 2, 3]
    assert outbox.published == 3
    await _stop(task)


async def test_entries_go_in_batches_and_each_batch_is_acked_once(
    store: RecordingStore,
) -> None:
    await store.commit(now_ms=1, events=_events(5))
    outbox = Outbox(store, batch=2, clock=ManualClock(start_ms=7), timer=VirtualTimer())
    assert outbox.published == 0
    publish = Recorder(None, 5)
    task = asyncio.create_task(outbox.pump(publish))
    await _until(lambda: store.peeks_done == 4)  # three batches, then the empty outbox
    await _stop(task)
    assert [seq for seq, _ in publish.sent] == [1, 2, 3, 4, 5]
    assert store.peek_limits == [2, 2, 2, 2]
    assert store.acks == [([1, 2], 7), ([3, 4], 7), ([5], 7)]
    assert outbox.published == 5


async def test_default_batch_is_100(store: RecordingStore) -> None:
    outbox = Outbox(store, timer=VirtualTimer())
    task = asyncio.create_task(outbox.pump(Recorder(None, 1)))
    await _until(lambda: store.peeks_done == 1)
    await _stop(task)
    assert store.peek_limits == [100]


async def test_a_failed_publish_keeps_the_entry_and_acks_the_rest(store: RecordingStore) -> None:
    await store.commit(now_ms=1, events=_events(4))
    outbox = Outbox(store, clock=ManualClock(start_ms=9), timer=VirtualTimer())
    sent: list[int] = []

    async def failing(kind: Kind, payload: bytes) -> None:
        seq = device_pb2.DeviceEvent.FromString(payload).seq
        if seq == 3:
            raise ConnectionError("link lost")
        sent.append(seq)

    with pytest.raises(ConnectionError):
        await outbox.pump(failing)
    assert sent == [1, 2]
    assert store.acks == [([1, 2], 9)]
    assert outbox.published == 2
    assert outbox.depth == 2

    with pytest.raises(ConnectionError):
        await outbox.pump(failing)  # fails at once on the same entry: nothing acked
    assert store.acks == [([1, 2], 9)]
    assert outbox.published == 2


async def test_loop_timer_is_the_event_loop_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    timer = LoopTimer()
    before = loop.time()
    assert before <= timer.time() <= loop.time()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    await timer.sleep(0.25)
    assert slept == [0.25]
