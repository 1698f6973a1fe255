"""The outbox bound (count and bytes), telemetry coalescing, the resend window, batched acks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge.errors import ResendWindowError
from edge.outbox import Outbox
from edge.store import Store
from lockerhub.topics import Kind
from lockerhub.v1 import common_pb2, device_pb2


def _event(detail: str = "") -> device_pb2.DeviceEvent:
    return device_pb2.DeviceEvent(
        door_changed=device_pb2.DoorChanged(compartment_id="C01" + detail, open=True)
    )


def _alarms(entries: list[device_pb2.DeviceEvent]) -> list[tuple[int, bool]]:
    return [(e.alarm.kind, e.alarm.active) for e in entries if e.WhichOneof("body") == "alarm"]


async def _pending_events(store: Store) -> list[device_pb2.DeviceEvent]:
    out = []
    for entry in await store.outbox_peek(100_000):
        if entry.kind is Kind.EVENT:
            out.append(device_pb2.DeviceEvent.FromString(entry.payload))
    return out


async def test_full_outbox_keeps_events_coalesces_telemetry_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    async with Store(path, outbox_max=100) as store:
        for i in range(3):
            await store.coalesce_telemetry(device_pb2.Telemetry(ts_ms=i + 1).SerializeToString(), i)
        telemetry = [e for e in await store.outbox_peek(1000) if e.kind is Kind.TELEMETRY]
        assert len(telemetry) == 1
        assert device_pb2.Telemetry.FromString(telemetry[0].payload).ts_ms == 3

        for _ in range(150):
            await store.commit(now_ms=10, events=[_event()])
        assert store.outbox_full
        assert store.outbox_full_total == 1
        events = await _pending_events(store)
        # Every event kept (150 + one alarm), the telemetry sample shed first.
        assert len(events) == 151
        assert _alarms(events) == [(common_pb2.ALARM_KIND_OUTBOX_FULL, True)]
        assert [e.seq for e in events] == list(range(1, 152))
        assert not [e for e in await store.outbox_peek(1000) if e.kind is not Kind.EVENT]
        # At the bound, a new telemetry sample does not grow the outbox past the events.
        await store.coalesce_telemetry(device_pb2.Telemetry(ts_ms=9).SerializeToString(), 11)
        assert store.outbox_depth == 151

    async with Store(path, outbox_max=100) as store:
        assert store.outbox_full, "the full flag survives a restart"
        assert store.outbox_full_total == 1
        pending = await store.outbox_peek(1000)
        await store.outbox_ack(*(e.id for e in pending[:100]), now_ms=20)
        assert not store.outbox_full
        events = await _pending_events(store)
        assert _alarms(events)[-1] == (common_pb2.ALARM_KIND_OUTBOX_FULL, False)


async def test_byte_bound(tmp_path: Path) -> None:
    async with Store(tmp_path / "b.sqlite3", outbox_max=10_000, outbox_max_bytes=65_536) as store:
        big = "x" * 40
        for _ in range(20):
            await store.commit(now_ms=1, events=[_event(big) for _ in range(100)])
        assert store.outbox_full
        assert store.outbox_bytes >= 65_536
        assert store.outbox_depth == 2001  # nothing business was dropped


async def test_resend_window(tmp_path: Path) -> None:
    async with Store(tmp_path / "r.sqlite3", resend_window=5) as store:
        await store.commit(now_ms=1, events=[_event() for _ in range(8)])
        pending = await store.outbox_peek()
        await store.outbox_ack(*(e.id for e in pending), now_ms=2)
        assert store.outbox_depth == 0
        assert await store.resend(5, 8, now_ms=3) == 4
        again = await store.outbox_peek()
        assert [e.seq for e in again] == [5, 6, 7, 8]
        original = {e.seq: e.payload for e in pending}
        assert all(e.payload == original[e.seq] for e in again), "same event id and seq"
        # Pending ones are not copied twice.
        assert await store.resend(6, 8, now_ms=4) == 0
        for bad in ((2, 3), (0, 1), (4, 3), (7, 99)):
            with pytest.raises(ResendWindowError):
                await store.resend(*bad, now_ms=5)


async def test_pump_acks_in_batches_and_keeps_order_across_failures(tmp_path: Path) -> None:
    async with Store(tmp_path / "p.sqlite3") as store:
        await store.commit(now_ms=1, events=[_event() for _ in range(30)])
        outbox = Outbox(store, batch=8)
        sent: list[int] = []

        async def flaky(kind: Kind, payload: bytes) -> None:
            seq = device_pb2.DeviceEvent.FromString(payload).seq
            if seq == 13 and 13 not in sent:
                sent.append(seq)
                raise ConnectionError("link lost")
            sent.append(seq)

        with pytest.raises(ConnectionError):
            await outbox.pump(flaky, rate_per_s=1e6)
        assert store.outbox_depth == 18  # 1..12 acknowledged, 13 onwards kept
        task = asyncio.create_task(outbox.pump(flaky, rate_per_s=1e6))
        async with asyncio.timeout(10):
            while store.outbox_depth:
                await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sent == [*range(1, 14), *range(13, 31)]
