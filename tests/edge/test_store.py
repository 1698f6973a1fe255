"""The SQLite store: boot counter, seq across restarts, outbox order and bound, commands."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest

from edge.cabinet import CompartmentRecord, CompartmentState
from edge.errors import StorageError
from edge.schema import MIGRATIONS
from edge.store import SCHEMA_VERSION, Store
from lockerhub.topics import Kind
from lockerhub.v1 import common_pb2, device_pb2


def _event() -> device_pb2.DeviceEvent:
    return device_pb2.DeviceEvent(
        door_changed=device_pb2.DoorChanged(compartment_id="C01", open=True)
    )


async def test_boot_and_seq_survive_restart(tmp_path: Path) -> None:
    path = tmp_path / "db" / "edge.sqlite3"
    async with Store(path) as store:
        assert await store.next_boot() == 1
        entries = await store.commit(now_ms=1, events=[_event(), _event()])
        assert [e.seq for e in entries] == [1, 2]
        await store.commit(
            now_ms=2,
            compartments=[
                CompartmentRecord(
                    compartment_id="C01", state=CompartmentState.RESERVED, parcel_id="P"
                )
            ],
        )
    async with Store(path) as store:
        assert await store.next_boot() == 2
        assert await store.last_seq() == 2
        assert store.outbox_depth == 2
        (entry,) = await store.commit(now_ms=3, events=[_event()])
        assert entry.seq == 3
        records = await store.load_compartments(["C01", "C02"])
        assert records["C01"].parcel_id == "P"
        assert records["C02"].state is CompartmentState.FREE
        pending = await store.outbox_peek()
        assert [e.seq for e in pending] == [1, 2, 3]
        await store.outbox_ack(pending[0].id)
        assert store.outbox_depth == 2
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_command_results_are_stored_and_bound_keeps_events(tmp_path: Path) -> None:
    async with Store(tmp_path / "e.sqlite3", outbox_max=100) as store:
        await store.begin_command("c1", 1)
        started = await store.command("c1")
        assert started is not None
        assert started.result is None
        result = device_pb2.CommandResult(
            command_id="c1", outcome=common_pb2.COMMAND_OUTCOME_OPENED, ts_ms=5, relay_fired=True
        )
        await store.commit(now_ms=5, results=[result])
        stored = await store.command("c1")
        assert stored is not None
        assert stored.result == result
        for _ in range(120):
            await store.commit(now_ms=6, events=[_event()])
        kinds = {e.kind for e in await store.outbox_peek(1000)}
        assert kinds == {Kind.EVENT}  # the command result was shed, no event was
        # 120 events plus the one OUTBOX_FULL alarm raised when the bound was reached.
        assert store.outbox_depth == 121
        assert store.outbox_overflow == 1
        assert store.outbox_full


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StorageError, match="newer"):
        async with Store(path):
            pass


async def test_a_cabinet_database_of_the_user_version_era_opens(tmp_path: Path) -> None:
    """Databases versioned by PRAGMA user_version (before lockerhub.sqlite) are adopted as is."""
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        for step in MIGRATIONS:
            db.executescript(step.sql)
        db.execute("PRAGMA user_version = 2")
        db.execute("UPDATE meta SET value = 7 WHERE key = 'boot_count'")
        db.execute("UPDATE meta SET value = 41 WHERE key = 'last_seq'")
        db.execute(
            "INSERT INTO compartments (compartment_id, state, parcel_id) "
            "VALUES ('C01', 'occupied', 'P-old')"
        )
        db.execute(
            "INSERT INTO outbox (kind, seq, business, payload, created_ms, size) "
            "VALUES ('event', 41, 1, x'00', 1, 1)"
        )
    db.close()
    async with Store(path) as store:
        assert await store.next_boot() == 8
        assert store.outbox_depth == 1
        assert store.outbox_bytes == 1
        (entry,) = await store.commit(now_ms=2, events=[_event()])
        assert entry.seq == 42
        records = await store.load_compartments(["C01"])
        assert records["C01"].state is CompartmentState.OCCUPIED
        assert records["C01"].parcel_id == "P-old"
    with sqlite3.connect(path) as db:
        versions = [r[0] for r in db.execute("SELECT version FROM schema_version ORDER BY 1")]
        assert versions == [1, 2]
    db.close()


async def test_a_failed_commit_changes_no_counter(tmp_path: Path) -> None:
    path = tmp_path / "f.sqlite3"
    async with Store(path) as store:
        await store.commit(now_ms=1, events=[_event()])
        before = store.counters
        with sqlite3.connect(path) as db:
            db.execute(
                "CREATE TRIGGER fault BEFORE INSERT ON outbox "
                "BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
            )
        db.close()
        with pytest.raises(StorageError, match="injected fault"):
            await store.commit(now_ms=2, events=[_event(), _event()])
        assert store.counters == before
        assert await store.last_seq() == 1


async def test_a_cancelled_commit_leaves_the_counters_as_the_disk_has_them(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    async with Store(path) as store:
        for delay in range(6):
            task = asyncio.create_task(store.commit(now_ms=1, events=[_event(), _event()]))
            for _ in range(delay):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with sqlite3.connect(path) as db:
                (depth,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
                (last,) = db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
            db.close()
            assert (store.outbox_depth, store.counters.last_seq) == (depth, last)
