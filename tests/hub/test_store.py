"""Store: migrations applied once, re-opening works, newer schemas refused; on both back ends."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from hub.errors import StoreConflict, StoreError
from hub.store import Store, Tx
from hub.store.migrations import MIGRATIONS


async def test_migrations_once_and_reopen(store_target: Path | str) -> None:
    async with Store(store_target) as store:
        assert store.schema_version == max(m[0] for m in MIGRATIONS)
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO sites VALUES ('s1', 'S1', 0, 0)")
    async with Store(store_target) as store:
        async with store.read() as tx:
            versions = await tx.fetchall("SELECT version FROM schema_version ORDER BY version")
            sites = await tx.fetchall("SELECT id FROM sites")
        assert [tuple(v) for v in versions] == [(m[0],) for m in MIGRATIONS]
        assert [tuple(s) for s in sites] == [("s1",)]
        assert await store.ping()


async def test_sqlite_is_in_wal_mode(tmp_path: Path) -> None:
    async with Store(tmp_path / "hub.db") as store, store.read() as tx:
        mode = await tx.fetchone("PRAGMA journal_mode")
    assert mode is not None
    assert mode[0] == "wal"


async def test_transaction_rolls_back(store_target: Path | str) -> None:
    async with Store(store_target) as store:

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
        # Still usable after a failed statement (PostgreSQL aborts the transaction; the next one
        # must start clean).
        async with store.transaction() as tx:
            assert await tx.execute("INSERT INTO sites VALUES ('s2', 'S2', 0, 0)") == 1


async def test_cancelled_transaction_commits_nothing(store_target: Path | str) -> None:
    async with Store(store_target) as store:
        started = asyncio.Event()

        async def slow() -> None:
            async with store.transaction() as tx:
                await tx.execute("INSERT INTO sites VALUES ('s1', 'S1', 0, 0)")
                started.set()
                await asyncio.sleep(30)

        task = asyncio.create_task(slow())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with store.read() as tx:
            assert await tx.fetchall("SELECT id FROM sites") == []
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO sites VALUES ('s2', 'S2', 0, 0)")


async def test_newer_schema_is_refused(store_target: Path | str) -> None:
    async with Store(store_target) as store, store.transaction() as tx:
        await tx.execute("INSERT INTO schema_version VALUES (999, 'future', 0)")
    with pytest.raises(StoreError, match="newer"):
        async with Store(store_target):
            pass


async def test_unopenable_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot open"):
        async with Store(tmp_path / "file" / "hub.db"):
            pass


async def test_unreachable_database_names_no_password(tmp_path: Path) -> None:
    url = f"postgresql://hub:s3cret@/nodb?host={tmp_path}&port=1&connect_timeout=1"
    store = Store(url)
    store._backend._timeout = 1.0  # type: ignore[attr-defined]  # fail fast in the test
    with pytest.raises(StoreError, match="cannot open") as caught:
        async with store:
            pass
    assert "s3cret" not in str(caught.value)


async def test_transaction_on_thread_commits_and_rolls_back(store_target: Path | str) -> None:
    async with Store(store_target) as store:

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

        with pytest.raises(RuntimeError, match="boom"):
            await store.transaction_on_thread(insert_then_fail)
        with pytest.raises(StoreError, match="no_such_table"):
            await store.transaction_on_thread(bad_sql)
        async with store.read() as tx:
            rows = await tx.fetchall("SELECT id FROM sites ORDER BY id")
        assert [r[0] for r in rows] == ["s1", "s2"]
        # The connection is still usable for ordinary transactions afterwards.
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO sites VALUES ('s6', 'S6', 0, 0)")


async def test_sqlite_thread_work_must_not_await_other_things(tmp_path: Path) -> None:
    async with Store(tmp_path / "hub.db") as store:

        async def awaits_a_timer(tx: Tx) -> None:
            await tx.execute("INSERT INTO sites VALUES ('s5', 'S5', 0, 0)")
            await asyncio.sleep(0)

        with pytest.raises(StoreError, match="awaited something other"):
            await store.transaction_on_thread(awaits_a_timer)
        async with store.read() as tx:
            assert await tx.fetchall("SELECT id FROM sites") == []


async def test_rows_by_name_and_position_and_portable_types(store_target: Path | str) -> None:
    async with Store(store_target) as store:
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO sites VALUES ('s1', 'S''1 100%', 1.5, 2.25)")
            await tx.execute(
                "INSERT INTO devices (id, site, kind, registered_ms, online, last_seq) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                ("d1", "s1", "cabinet", 2**40, True, 5),
            )
            await tx.execute(
                "INSERT INTO devices (id, site, kind, registered_ms, online) "
                "VALUES (?, ?, ?, ?, ?)",
                ("d2", "s1", "cabinet", 0, True),
            )
            # SQLite's scalar MAX(a, b) (GREATEST on PostgreSQL), bools bound as 0/1.
            await tx.execute(
                "UPDATE devices SET last_seq = MAX(last_seq, ?) WHERE id = ?", (3, "d1")
            )
            await tx.execute(
                "UPDATE devices SET last_seq = MAX(last_seq, ?) WHERE id = ?", (9, "d2")
            )
            await tx.execute(
                "INSERT INTO commands (id, device, type, body, actor, state, created_ms, "
                "expires_ms) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)",
                ("c1", "d1", "open", b"\x00\xff", "op", 1, 2),
            )
        async with store.read() as tx:
            site = await tx.fetchone("SELECT * FROM sites WHERE name LIKE '%100%'")
            seqs = await tx.fetchall("SELECT id, last_seq, registered_ms FROM devices ORDER BY id")
            online = await tx.fetchone("SELECT SUM(online) AS n FROM devices")
            body = await tx.fetchone("SELECT body FROM commands WHERE id = ?", ("c1",))
        assert site is not None
        assert (site["id"], site["name"], site[2], site["lon"]) == ("s1", "S'1 100%", 1.5, 2.25)
        assert "lat" in site.keys()  # noqa: SIM118 - a Row, not a dict
        assert [(r["id"], r["last_seq"], r[2]) for r in seqs] == [("d1", 5, 2**40), ("d2", 9, 0)]
        assert online is not None
        assert online["n"] == 2
        assert isinstance(online["n"], int)
        assert body is not None
        assert bytes(body["body"]) == b"\x00\xff"


@pytest.mark.parametrize(
    "hostile",
    ["x" * 200_000, "'; DROP TABLE sites; --", "?", "%s", "\u202e\U0001f4a9", "a\x00b"],
)
async def test_hostile_text_is_data_or_a_store_error(
    store_target: Path | str, hostile: str
) -> None:
    async with Store(store_target) as store:
        try:
            async with store.transaction() as tx:
                await tx.execute("INSERT INTO sites VALUES (?, ?, 0, 0)", ("s1", hostile))
        except StoreError:
            assert "\x00" in hostile  # PostgreSQL text cannot hold NUL: refused, not crashed
            return
        async with store.read() as tx:
            row = await tx.fetchone("SELECT name FROM sites WHERE id = ?", ("s1",))
            tables = await tx.fetchone("SELECT COUNT(*) FROM sites")
        assert row is not None
        assert row["name"] == hostile
        assert tables is not None
        assert tables[0] == 1


async def test_stores_opening_together_migrate_once(postgres: object) -> None:
    from tests.support.postgres import PostgresServer

    assert isinstance(postgres, PostgresServer)
    url = postgres.create_database()
    stores = [Store(url) for _ in range(4)]
    await asyncio.gather(*(s.__aenter__() for s in stores))
    try:
        async with stores[0].read() as tx:
            rows = await tx.fetchall("SELECT version FROM schema_version ORDER BY version")
        assert [r[0] for r in rows] == [m[0] for m in MIGRATIONS]
        assert {s.schema_version for s in stores} == {max(m[0] for m in MIGRATIONS)}
    finally:
        for s in stores:
            await s.__aexit__(None, None, None)


async def test_conflicts_are_retried_not_surfaced(postgres: object) -> None:
    """Two hubs (stores) locking two rows in opposite orders deadlock; PostgreSQL aborts one,
    and the store runs its work again instead of failing the caller."""
    from tests.support.postgres import PostgresServer

    assert isinstance(postgres, PostgresServer)
    url = postgres.create_database()
    async with Store(url) as a, Store(url) as b:
        async with a.transaction() as tx:
            await tx.executemany("INSERT INTO sites VALUES (?, ?, 0, 0)", [("x", "X"), ("y", "Y")])
        # The work runs on each store's own database thread: a thread barrier, not an await.
        both = threading.Barrier(2, timeout=10)
        attempts = {"a": 0, "b": 0}

        def crosswise(name: str, first: str, second: str):  # type: ignore[no-untyped-def]
            async def work(tx: Tx) -> None:
                attempts[name] += 1
                await tx.execute("UPDATE sites SET name = name || ? WHERE id = ?", (name, first))
                if attempts[name] == 1:
                    both.wait()  # both hold their first row: the second update deadlocks
                await tx.execute("UPDATE sites SET name = name || ? WHERE id = ?", (name, second))

            return work

        await asyncio.gather(
            a.transaction_on_thread(crosswise("a", "x", "y")),
            b.transaction_on_thread(crosswise("b", "y", "x")),
        )
        assert sorted(attempts.values()) == [1, 2]
        async with a.read() as tx:
            names = {r["id"]: r["name"] for r in await tx.fetchall("SELECT id, name FROM sites")}
        # Each row got each hub's mark exactly once.
        assert sorted(names["x"][1:]) == ["a", "b"]
        assert sorted(names["y"][1:]) == ["a", "b"]


async def test_a_conflict_that_never_clears_is_a_store_error(store_target: Path | str) -> None:
    async with Store(store_target) as store:
        calls = 0

        async def always_loses(tx: Tx) -> None:
            nonlocal calls
            calls += 1
            raise StoreConflict("compartment taken meanwhile")

        with pytest.raises(StoreConflict):
            await store.transaction_on_thread(always_loses)
        assert calls >= 1


async def test_compute_runs_off_the_event_loop(store_target: Path | str) -> None:
    loop_thread = threading.get_ident()
    async with Store(store_target) as store:

        async def work(tx: Tx) -> int:
            return await tx.compute(threading.get_ident)

        assert await store.transaction_on_thread(work) != loop_thread
        async with store.transaction() as tx:
            assert await tx.compute(threading.get_ident) != loop_thread
