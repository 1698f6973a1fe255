"""The hub's SQLite store (WAL) with versioned migrations, on a database thread the hub owns.

One connection (``lockerhub.sqlite.Database``); transactions are serialised by an asyncio lock so
that the ingest loop and gRPC handlers never interleave statements. A write whose caller is
cancelled before its commit (a gRPC deadline, a client that went away) commits nothing.
sqlite3 errors become :class:`hub.errors.StoreError` here.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from hub.errors import StoreError
from hub.store.migrations import MIGRATIONS
from lockerhub.sqlite import DEFAULT_PRAGMAS, Database, Migration, migrate, open_database

Row = sqlite3.Row
Params = Sequence[Any] | dict[str, Any]
T = TypeVar("T")
# secure_delete: deleted rows (a purged phone number) are overwritten with zeros in their page
# and freed pages are zeroed, so that nothing personal survives in free space of the file.
STORE_PRAGMAS = (*DEFAULT_PRAGMAS, "PRAGMA secure_delete=ON")


class Tx:
    """Statements on the store inside one transaction (or one read), one thread hop each."""

    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        try:
            return await self._db.run(lambda conn: _execute(conn, sql, params))
        except sqlite3.Error as exc:
            raise StoreError(f"database statement failed: {exc}") from exc

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        batch = list(rows)
        try:
            await self._db.run(lambda conn: conn.executemany(sql, batch).close())
        except sqlite3.Error as exc:
            raise StoreError(f"database statement failed: {exc}") from exc

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        try:
            return await self._db.run(lambda conn: _fetchone(conn, sql, params))
        except sqlite3.Error as exc:
            raise StoreError(f"database query failed: {exc}") from exc

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            return await self._db.run(lambda conn: _fetchall(conn, sql, params))
        except sqlite3.Error as exc:
            raise StoreError(f"database query failed: {exc}") from exc


def _execute(conn: sqlite3.Connection, sql: str, params: Params) -> int:
    cursor = conn.execute(sql, params)
    count = cursor.rowcount
    cursor.close()
    return count


def _fetchone(conn: sqlite3.Connection, sql: str, params: Params) -> Row | None:
    cursor = conn.execute(sql, params)
    row: Row | None = cursor.fetchone()
    cursor.close()
    return row


def _fetchall(conn: sqlite3.Connection, sql: str, params: Params) -> list[Row]:
    cursor = conn.execute(sql, params)
    rows = list(cursor.fetchall())
    cursor.close()
    return rows


class DirectTx(Tx):
    """A :class:`Tx` whose statements run at once on the connection, on the database thread.

    Only valid inside :meth:`Store.transaction_on_thread`: the awaits never suspend, so a whole
    transaction costs one hop to that thread instead of one per statement.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: sqlite3.Connection) -> None:  # no super(): no Database hop here
        self._raw = raw

    async def execute(self, sql: str, params: Params = ()) -> int:
        try:
            return _execute(self._raw, sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"database statement failed: {exc}") from exc

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        try:
            self._raw.executemany(sql, rows).close()
        except sqlite3.Error as exc:
            raise StoreError(f"database statement failed: {exc}") from exc

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        try:
            return _fetchone(self._raw, sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"database query failed: {exc}") from exc

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            return _fetchall(self._raw, sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"database query failed: {exc}") from exc


def _run_to_end(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (it awaits only :class:`DirectTx`) to its result."""
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    raise StoreError("a database-thread transaction awaited something other than the store")


class Store:
    """Async context manager owning the database (its connection and thread)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: Database | None = None
        self._lock = asyncio.Lock()
        self._version = 0
        # Set (and replaced) after every commit: WatchEvents waits on it instead of polling.
        self._committed = asyncio.Event()

    @property
    def schema_version(self) -> int:
        return self._version

    async def __aenter__(self) -> Self:
        try:
            self._db, self._version = await open_database(
                self._path,
                lambda conn: migrate(conn, _MIGRATIONS),
                pragmas=_PRAGMAS,
                thread_name="hub-store",
            )
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open database {self._path}: {exc}") from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        db, self._db = self._db, None
        if db is not None:
            async with self._lock:  # let a transaction in flight finish or roll back first
                await db.__aexit__(exc_type, exc, tb)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A write transaction: committed on success, rolled back on any exception or cancel."""
        db = self._require()
        async with self._lock:
            tx = Tx(db)
            await tx.execute("BEGIN IMMEDIATE")
            try:
                yield tx
            except BaseException:
                await asyncio.shield(db.run(_rollback))
                raise
            await tx.execute("COMMIT")
        self._signal_commit()

    async def transaction_on_thread(self, work: Callable[[Tx], Coroutine[Any, Any, T]]) -> T:
        """Run ``work(tx)`` as ONE write transaction on the database thread; return its result.

        Same guarantees as :meth:`transaction` (committed on success, rolled back on any
        exception or on cancellation before the commit, serialised with every other
        transaction), but the statements do not each hop between the event loop and the
        database thread: ``work`` must await only the ``tx`` it is given (no I/O, no sleeps),
        which :class:`DirectTx` runs synchronously.
        """
        db = self._require()
        async with self._lock:
            try:
                value = await db.transaction(lambda conn: _run_to_end(work(DirectTx(conn))))
            except sqlite3.Error as exc:
                raise StoreError(f"database transaction failed: {exc}") from exc
        self._signal_commit()
        return value

    def _signal_commit(self) -> None:
        self._committed.set()
        self._committed = asyncio.Event()

    def commit_signal(self) -> asyncio.Event:
        """An event set by the next commit (take it before reading, then wait on it)."""
        return self._committed

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """Consistent reads outside a write transaction."""
        db = self._require()
        async with self._lock:
            yield Tx(db)

    async def erase_history(self) -> None:
        """Leave no deleted content in the files: checkpoint the write-ahead log into the
        database (whose freed content secure_delete has zeroed) and truncate it to zero bytes.

        Raises:
            StoreError: the checkpoint failed or could not complete (a reader held it back).
        """
        db = self._require()
        async with self._lock:
            try:
                row = await db.run(_checkpoint_truncate)
            except sqlite3.Error as exc:
                raise StoreError(f"checkpoint failed: {exc}") from exc
        if row[0]:
            raise StoreError("checkpoint could not complete: the write-ahead log is still in use")

    async def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            async with self.read() as tx:
                await tx.fetchone("SELECT 1")
        except StoreError:
            return False
        return True

    def _require(self) -> Database:
        if self._db is None:
            raise StoreError("the store is not open")
        return self._db


# Several hub processes may share the file (docs/hub.md): a writer waits up to this long for the
# others' write lock. SQLite's busy handler is not fair (sleep and retry), so under contention a
# waiter can lose several rounds; 5 s was seen to run out with three hubs on a loaded machine.
_PRAGMAS = (*(p for p in STORE_PRAGMAS if "busy_timeout" not in p), "PRAGMA busy_timeout=30000")

_MIGRATIONS = tuple(Migration(v, description, sql) for v, description, sql in MIGRATIONS)


def _checkpoint_truncate(conn: sqlite3.Connection) -> tuple[int, int, int]:
    row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return (int(row[0]), int(row[1]), int(row[2]))


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")
