"""A fleet's shared database: each cabinet's rows are its own; a cabinet's file stays as it was."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from edge.errors import StorageError
from edge.schedule import SharedTicker
from edge.schema import prepare_fleet
from edge.settings import EdgeSettings
from edge.sql import OWN_FILE, SHARED_FILE, Scope
from edge.storage import OwnFile, SharedDatabase
from edge.store import Store
from lockerhub.clock import ManualClock
from lockerhub.sqlite import open_database
from lockerhub.topics import Kind
from lockerhub.v1 import device_pb2

HOSTILE = ("x' OR '1'='1", 'a"; DROP TABLE outbox; --', "ü" * 64, "%", "_", "")


def _settings(device: str, path: Path) -> EdgeSettings:
    return EdgeSettings.from_mapping(
        {"device": {"id": device, "site": "s"}, "storage": {"path": str(path)}}
    )


def _door(cid: str) -> device_pb2.DeviceEvent:
    return device_pb2.DeviceEvent(door_changed=device_pb2.DoorChanged(compartment_id=cid))


def test_a_cabinets_own_file_runs_the_statements_it_always_ran() -> None:
    # Pinned text of statements a cabinet in the field runs (before the fleet layout existed).
    assert OWN_FILE["kv_put"] == (
        "INSERT INTO kv (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    )
    peek = "SELECT id, kind, seq, payload FROM outbox ORDER BY id LIMIT ?"
    assert OWN_FILE["outbox_peek"] == peek
    assert OWN_FILE["meta_bump"] == "UPDATE meta SET value = value + 1 WHERE key = ?"
    assert all("cabinet" not in sql for sql in OWN_FILE.values())
    # Every shared statement is scoped: the cabinet id is its first parameter.
    assert all("cabinet" in sql for sql in SHARED_FILE.values())
    assert Scope().args(1, 2) == (1, 2)
    assert Scope("c").args(1, 2) == ("c", 1, 2)


async def test_cabinets_in_one_file_keep_their_own_seq_outbox_and_blobs(tmp_path: Path) -> None:
    path = tmp_path / "fleet.sqlite3"
    async with (
        SharedDatabase(path) as shared,
        shared.store_for(_settings("cab-a", tmp_path / "unused")) as a,
        shared.store_for(_settings("cab-b", tmp_path / "unused")) as b,
    ):
        assert await a.next_boot() == 1
        assert await a.next_boot() == 2
        assert await b.next_boot() == 1
        sent_a = await a.commit(now_ms=1, events=[_door("1"), _door("2")])
        sent_b = await b.commit(now_ms=1, events=[_door("1")], blobs=[("k", b"B")])
        assert [e.seq for e in sent_a] == [1, 2]
        assert [e.seq for e in sent_b] == [1]
        assert await a.get_blob("k") is None
        assert await b.get_blob("k") == b"B"
        assert [e.id for e in await a.outbox_peek()] == [e.id for e in sent_a]
        # An id of another cabinet's entry acknowledges nothing of this one's, nor of its own.
        await a.outbox_ack(sent_b[0].id, now_ms=2)
        assert b.outbox_depth == 1
        assert [e.id for e in await b.outbox_peek()] == [sent_b[0].id]
        assert a.outbox_depth == 2
        await a.outbox_ack(*(e.id for e in sent_a), now_ms=2)
        assert a.outbox_depth == 0
        assert await a.resend(1, 2, now_ms=3) == 2  # from its own resend window
        assert [e.kind for e in await a.outbox_peek()] == [Kind.EVENT, Kind.EVENT]
    # Reopened (a restart of the fleet): counters and seq come back per cabinet.
    async with (
        SharedDatabase(path) as shared,
        shared.store_for(_settings("cab-a", tmp_path / "unused")) as a,
    ):
        assert await a.next_boot() == 3
        assert a.outbox_depth == 2
        assert (await a.commit(now_ms=4, events=[_door("3")]))[0].seq == 3


async def test_hostile_cabinet_ids_are_only_parameters(tmp_path: Path) -> None:
    # Below the settings (which refuse such device ids): the store itself must bind them.
    db, _ = await open_database(tmp_path / "fleet.sqlite3", prepare_fleet)
    async with db:
        stores = [Store.attached(db, cab) for cab in HOSTILE]
        for store in stores:
            await store.__aenter__()
        try:
            for i, store in enumerate(stores):
                await store.commit(now_ms=1, events=[_door(str(i))])
            for store in stores:
                assert store.outbox_depth == 1
                assert len(await store.outbox_peek()) == 1
                assert store.counters.last_seq == 1
        finally:
            for store in stores:
                await store.__aexit__(None, None, None)
    with sqlite3.connect(tmp_path / "fleet.sqlite3") as conn:
        cabinets = {r[0] for r in conn.execute("SELECT DISTINCT cabinet FROM outbox")}
    assert cabinets == set(HOSTILE)


async def test_a_cabinet_file_and_a_fleet_file_are_never_mixed_up(tmp_path: Path) -> None:
    own = tmp_path / "cab.sqlite3"
    async with OwnFile().store_for(_settings("cab", own)) as store:
        await store.commit(now_ms=1, events=[_door("1")])
    with pytest.raises(StorageError, match="cabinet's own database"):
        async with SharedDatabase(own):
            pass
    async with OwnFile().store_for(_settings("cab", own)) as store:
        assert store.outbox_depth == 1  # untouched
    fleet = tmp_path / "fleet.sqlite3"
    async with SharedDatabase(fleet):
        pass
    with pytest.raises(StorageError):
        async with OwnFile().store_for(_settings("cab", fleet)):
            pass
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"not a database" * 100)
    with pytest.raises(StorageError):
        async with SharedDatabase(garbage):
            pass


async def test_a_store_of_a_closed_fleet_database_is_an_error(tmp_path: Path) -> None:
    shared = SharedDatabase(tmp_path / "fleet.sqlite3")
    with pytest.raises(StorageError, match="not open"):
        shared.store_for(_settings("cab", tmp_path / "x"))
    with pytest.raises(StorageError, match="not open"):
        await shared.backlog()


async def test_the_fleet_backlog_names_the_oldest_waiting_event(tmp_path: Path) -> None:
    async with SharedDatabase(tmp_path / "fleet.sqlite3") as shared:
        assert await shared.backlog() == (0, None)
        async with (
            shared.store_for(_settings("a", tmp_path / "x")) as a,
            shared.store_for(_settings("b", tmp_path / "x")) as b,
        ):
            await a.coalesce_telemetry(b"t", 5)  # not a business event
            await b.commit(now_ms=1_000_000_000_700, events=[_door("1")])
            await a.commit(now_ms=1_000_000_000_900, events=[_door("1")])
            assert await shared.backlog() == (3, 1_000_000_000_700)


async def test_the_shared_ticker_calls_every_job_each_period_and_survives_a_failing_one() -> None:
    clock = ManualClock()
    ticker = SharedTicker(1.0, slices=4, clock=clock)
    calls: dict[str, int] = {"a": 0, "b": 0}
    errors: list[str] = []

    def job(name: str) -> object:
        async def run() -> None:
            calls[name] += 1

        return run

    async def broken() -> None:
        raise RuntimeError("sweep failed")

    with pytest.raises(ValueError, match="period_s"):
        SharedTicker(0)
    with pytest.raises(ValueError, match="slices"):
        SharedTicker(1.0, slices=0)

    async def next_slice() -> None:
        n = clock.sleeps
        clock.advance(250)
        await clock.wait_for_sleeps(n + 1)  # the ticker ran the slice and sleeps again

    with (
        ticker.join("a", job("a"), errors.append),  # type: ignore[arg-type]
        ticker.join("bad", broken, errors.append),
    ):
        task = asyncio.create_task(ticker.run())
        try:
            with ticker.join("b", job("b"), errors.append):  # type: ignore[arg-type]
                await clock.wait_for_sleeps(1)  # slice 0 of the first pass: "a"
                for _ in range(3 * 4):  # three periods of four slices
                    await next_slice()
                assert ticker.passes == 3
                # One job per slice: a, bad, b, (none); then the fourth pass began with "a".
                assert calls == {"a": 4, "b": 3}
                assert errors == ["bad"] * 3
            assert ticker.jobs == 2
            for _ in range(4):
                await next_slice()
            assert calls == {"a": 5, "b": 3}  # "b" left: no longer called
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert ticker.jobs == 0
