"""Store: migrations applied once, re-opening works, newer schemas refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.errors import StoreError
from hub.migrations import MIGRATIONS
from hub.store import Store


async def test_migrations_once_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "db" / "hub.db"
    async with Store(path) as store:
        assert store.schema_version == len(MIGRATIONS)
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
