"""The hub's SQLite store (aiosqlite, WAL) with versioned migrations.

One connection; transactions are serialised by an asyncio lock so that the ingest loop and gRPC
handlers never interleave statements. sqlite3 errors become :class:`hub.errors.StoreError` here.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import aiosqlite

from hub.errors import StoreError
from hub.store.migrations import MIGRATIONS

Row = sqlite3.Row
Params = Sequence[Any] | dict[str, Any]
T = TypeVar("T")


class Tx:
    """Statements on the store inside one transaction (or one read)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        try:
            cursor = await self._conn.execute(sql, params)
            count = cursor.rowcount
            await cursor.close()
        except sqlite3.Error as exc:
            raise StoreError(f"database statement failed: {exc}") from exc
        return count

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        try:
            await self._conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise StoreError(f"database statement failed: {exc}") from exc

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        try:
            async with self._conn.execute(sql, params) as cursor:
                row: Row | None = await cursor.fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"database query failed: {exc}") from exc
        return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            async with self._conn.execute(sql, params) as cursor:
                rows = list(await cursor.fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"database query failed: {exc}") from exc
        return rows


class DirectTx(Tx):
    """A :class:`Tx` whose statements run at once on the plain sqlite3 connection.

    Only valid on the database thread, inside :meth:`Store.transaction_on_thread`: the awaits
    never suspend, so a whole transaction costs one hop to that thread instead of one per
    statement.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: sqlite3.Connection) -> None:  # no super(): nothing of aiosqlite here
        self._raw = raw

    async def execute(self, sql: str, params: Params = ()) -> int:
        try:
            cursor = self._raw.execute(sql, params)
            count = cursor.rowcount
            cursor.close()
        except sqlite3.Error as exc:
            raise StoreError(f"database statement failed: {exc}") from exc
        return count

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        try:
            self._raw.executemany(sql, rows).close()
        except sqlite3.Error as exc:
            raise StoreError(f"database statement failed: {exc}") from exc

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        try:
            cursor = self._raw.execute(sql, params)
            row: Row | None = cursor.fetchone()
            cursor.close()
        except sqlite3.Error as exc:
            raise StoreError(f"database query failed: {exc}") from exc
        return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            cursor = self._raw.execute(sql, params)
            rows = list(cursor.fetchall())
            cursor.close()
        except sqlite3.Error as exc:
            raise StoreError(f"database query failed: {exc}") from exc
        return rows


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
    """Async context manager owning the database connection."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._version = 0
        # Set (and replaced) after every commit: WatchEvents waits on it instead of polling.
        self._committed = asyncio.Event()

    @property
    def schema_version(self) -> int:
        return self._version

    async def __aenter__(self) -> Self:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE) in transaction().
            self._conn = await aiosqlite.connect(self._path, isolation_level=None)
            self._conn.row_factory = sqlite3.Row
            for pragma in (
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=NORMAL",
                "PRAGMA foreign_keys=ON",
                "PRAGMA busy_timeout=5000",
            ):
                await self._conn.execute(pragma)
            await self._migrate(self._conn)
        except (sqlite3.Error, OSError) as exc:
            await self._close()
            raise StoreError(f"cannot open database {self._path}: {exc}") from exc
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    async def _migrate(self, conn: aiosqlite.Connection) -> None:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_ms INTEGER NOT NULL)"
        )
        async with conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version") as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row else 0
        known = max(v for v, _, _ in MIGRATIONS)
        if current > known:
            raise StoreError(
                f"database {self._path} has schema version {current}, newer than this hub's "
                f"{known}: upgrade the hub"
            )
        for version, description, sql in MIGRATIONS:
            if version <= current:
                continue
            # One script per migration, inside its own transaction, recorded with it.
            await conn.executescript(
                f"BEGIN IMMEDIATE;\n{sql}\n"
                f"INSERT INTO schema_version VALUES ({version}, '{description}', "
                "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));\nCOMMIT;"
            )
        self._version = known

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A write transaction: committed on success, rolled back on any exception."""
        conn = self._require()
        async with self._lock:
            tx = Tx(conn)
            await tx.execute("BEGIN IMMEDIATE")
            try:
                yield tx
            except BaseException:
                await conn.rollback()
                raise
            await tx.execute("COMMIT")
        self._committed.set()
        self._committed = asyncio.Event()

    async def transaction_on_thread(self, work: Callable[[Tx], Coroutine[Any, Any, T]]) -> T:
        """Run ``work(tx)`` as ONE write transaction on the database thread; return its result.

        Same guarantees as :meth:`transaction` (committed on success, rolled back on any
        exception, serialised with every other transaction), but the statements do not each
        round-trip between the event loop and aiosqlite's thread: ``work`` must await only the
        ``tx`` it is given (no I/O, no sleeps), which :class:`DirectTx` runs synchronously.
        """
        conn = self._require()

        def run() -> T:
            # aiosqlite has no public "run this callable on the connection's thread"; its
            # Connection._execute (checked in 0.22) does exactly that, FIFO with every other
            # statement, and Connection._conn is the sqlite3 connection owned by that thread.
            raw = conn._conn
            raw.execute("BEGIN IMMEDIATE")
            try:
                result = _run_to_end(work(DirectTx(raw)))
                raw.execute("COMMIT")
            except BaseException:
                if raw.in_transaction:
                    raw.execute("ROLLBACK")
                raise
            return result

        on_thread = cast(Callable[[Callable[[], T]], Awaitable[T]], conn._execute)

        async with self._lock:
            try:
                value = await on_thread(run)
            except sqlite3.Error as exc:
                raise StoreError(f"database transaction failed: {exc}") from exc
        self._committed.set()
        self._committed = asyncio.Event()
        return value

    def commit_signal(self) -> asyncio.Event:
        """An event set by the next commit (take it before reading, then wait on it)."""
        return self._committed

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """Consistent reads outside a write transaction."""
        conn = self._require()
        async with self._lock:
            yield Tx(conn)

    async def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            async with self.read() as tx:
                await tx.fetchone("SELECT 1")
        except StoreError:
            return False
        return True

    def _require(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StoreError("the store is not open")
        return self._conn
