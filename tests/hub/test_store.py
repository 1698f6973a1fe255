"""Store: migrations applied once, re-opening works, newer schemas refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hub.errors import StoreError
from hub.store import Store, Tx
from hub.store.migrations import MIGRATIONS


async def test_migrations_once_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "db" / "hub.db"
    async with Store(path) as store:
        assert store.schema_version == max(v for v, _, _ in MIGRATIONS)
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO sites VALUES ('s1', 'S1', 0, 0)")
        async with store.read() as tx:
            mode = await tx.fetchone("PRAGMA journal_mode")
        assert mode is not None
        assert mode[0] == "wal"
    async with Store(path) as store:
        async with store.read() as tx:
            versions = await tx.fetchall("SELECT version FROM schema_version")
            sites = await tx.fetchall("SELECT id FROM sites")
        assert [tuple(v) for v in versions] == [(m[0],) for m in MIGRATIONS]
        assert [tuple(s) for s in sites] == [("s1",)]
        assert await store.ping()


async def test_transaction_rolls_back(tmp_path: Path) -> None:
    async with Store(tmp_path / "hub.db") as store:

        async def insert_then_fail() -> None:
            async with store.transaction() as tx:
                await tx.execute("INSERT INTO sites VALUES ('s1', 'S1', 0, 0)")
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await insert_then_fail()
        with pytest.raises(StoreError):
            async with store.transaction() as tx:
                await tx.execute("INSERT INTO no_such_table VALUES (1)")
        async with store.read() as tx:
            assert await tx.fetchall("SELECT * FROM sites") == []


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    async with Store(path) as store, store.transaction() as tx:
        await tx.execute("INSERT INTO schema_version VALUES (999, 'future', 0)")
    with pytest.raises(StoreError, match="newer"):
        async with Store(path):
            pass


async def test_unopenable_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot open"):
        async with Store(tmp_path / "file" / "hub.db"):
            pass


async def test_transaction_on_thread_commits_and_rolls_back(tmp_path: Path) -> None:
    async with Store(tmp_path / "hub.db") as store:

        async def insert(tx: Tx) -> int:
            await tx.executemany(
                "INSERT INTO sites VALUES (?, ?, 0, 0)", [("s1", "S1"), ("s2", "S2")]
            )
            row = await tx.fetchone("SELECT COUNT(*) FROM sites")
            assert row is not None
            return int(row[0])

        signal = store.commit_signal()
        assert await store.transaction_on_thread(insert) == 2
        assert signal.is_set()

        async def insert_then_fail(tx: Tx) -> None:
            await tx.execute("INSERT INTO sites VALUES ('s3', 'S3', 0, 0)")
            raise RuntimeError("boom")

        async def bad_sql(tx: Tx) -> None:
            await tx.execute("INSERT INTO sites VALUES ('s4', 'S4', 0, 0)")
            await tx.execute("INSERT INTO no_such_table VALUES (1)")

        async def awaits_a_timer(tx: Tx) -> None:
            await tx.execute("INSERT INTO sites VALUES ('s5', 'S5', 0, 0)")
            await asyncio.sleep(0)

        with pytest.raises(RuntimeError, match="boom"):
            await store.transaction_on_thread(insert_then_fail)
        with pytest.raises(StoreError, match="no_such_table"):
            await store.transaction_on_thread(bad_sql)
        with pytest.raises(StoreError, match="awaited something other"):
            await store.transaction_on_thread(awaits_a_timer)
        async with store.read() as tx:
            rows = await tx.fetchall("SELECT id FROM sites ORDER BY id")
        assert [r[0] for r in rows] == ["s1", "s2"]
        # The connection is still usable for ordinary transactions afterwards.
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO sites VALUES ('s6', 'S6', 0, 0)")
