"""The SQLite back end (WAL), on a database thread the hub owns: the embedded default.

One connection (``lockerhub.sqlite.Database``); transactions are serialised by an asyncio lock so
that the ingest loop and gRPC handlers never interleave statements, and ``BEGIN IMMEDIATE`` takes
the file's write lock, so two processes on one file serialise too. A write whose caller is
cancelled before its commit (a gRPC deadline, a client that went away) commits nothing.
sqlite3 errors become :class:`hub.errors.StoreError` here.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from hub.errors import StoreConflict, StoreError
from hub.store.interface import Backend, Migrations, Params, Row, Tx, Work, run_to_end
from lockerhub.sqlite import DEFAULT_PRAGMAS, Database, Migration, migrate, open_database

T = TypeVar("T")


class SqliteTx(Tx):
    """Statements on the store inside one transaction (or one read), one thread hop each."""

    __slots__ = ("_db",)
    dialect = "sqlite"

    def __init__(self, db: Database) -> None:
        self._db = db

    async def execute(self, sql: str, params: Params = ()) -> int:
        try:
            return await self._db.run(lambda conn: _execute(conn, sql, params))
        except sqlite3.Error as exc:
            raise StoreError(f"database statement failed: {exc}") from exc

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        batch = list(rows)
        try:
            return await self._db.run(lambda conn: _executemany(conn, sql, batch))
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

    async def lock(self, *keys: str) -> None:
        """Nothing to do: the transaction already holds the database's only write lock."""


def _execute(conn: sqlite3.Connection, sql: str, params: Params) -> int:
    cursor = conn.execute(sql, params)
    count = cursor.rowcount
    cursor.close()
    return count


def _executemany(conn: sqlite3.Connection, sql: str, rows: Iterable[Params]) -> int:
    cursor = conn.executemany(sql, rows)
    count = cursor.rowcount
    cursor.close()
    return max(count, 0)


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

    Only valid inside :meth:`SqliteBackend.run`: the awaits never suspend, so a whole
    transaction costs one hop to that thread instead of one per statement.
    """

    __slots__ = ("_raw",)
    dialect = "sqlite"

    def __init__(self, raw: sqlite3.Connection) -> None:
        self._raw = raw

    async def execute(self, sql: str, params: Params = ()) -> int:
        try:
            return _execute(self._raw, sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"database statement failed: {exc}") from exc

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        try:
            return _executemany(self._raw, sql, rows)
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

    async def lock(self, *keys: str) -> None:
        """Nothing to do (see :meth:`SqliteTx.lock`)."""

    async def compute(self, fn: Callable[[], T]) -> T:
        """Already off the event loop, on the database thread: run it here."""
        return fn()


# secure_delete: deleted rows (a purged phone number) are overwritten with zeros in their page
# and freed pages are zeroed, so that nothing personal survives in free space of the file.
STORE_PRAGMAS = (*DEFAULT_PRAGMAS, "PRAGMA secure_delete=ON")


class SqliteBackend(Backend):
    """The database file, its connection and its thread."""

    def __init__(
        self, path: Path, migrations: Migrations, *, thread_name: str = "hub-store"
    ) -> None:
        self._path = path
        self._migrations = tuple(Migration(v, d, sql) for v, d, sql in migrations)
        self._thread_name = thread_name
        self._db: Database | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        try:
            self._db, self.schema_version = await open_database(
                self._path,
                lambda conn: migrate(conn, self._migrations),
                pragmas=STORE_PRAGMAS,
                thread_name=self._thread_name,
            )
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open database {self._path}: {exc}") from exc

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            async with self._lock:  # let a transaction in flight finish or roll back first
                await db.__aexit__(None, None, None)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        db = self._require()
        async with self._lock:
            tx = SqliteTx(db)
            await tx.execute("BEGIN IMMEDIATE")
            try:
                yield tx
            except BaseException:
                await asyncio.shield(db.run(_rollback))
                raise
            await tx.execute("COMMIT")

    async def run(self, work: Work[T]) -> T:
        db = self._require()
        async with self._lock:
            try:
                return await db.transaction(lambda conn: run_to_end(work(DirectTx(conn))))
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    # Another process held the file's write lock past busy_timeout: retryable.
                    raise StoreConflict(f"database transaction waited too long: {exc}") from exc
                raise StoreError(f"database transaction failed: {exc}") from exc
            except sqlite3.Error as exc:
                raise StoreError(f"database transaction failed: {exc}") from exc

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        db = self._require()
        async with self._lock:
            yield SqliteTx(db)

    async def erase_history(self) -> None:
        """Checkpoint the write-ahead log into the database (whose freed content secure_delete
        has zeroed) and truncate it to zero bytes.

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

    def _require(self) -> Database:
        if self._db is None:
            raise StoreError("the store is not open")
        return self._db


def _checkpoint_truncate(conn: sqlite3.Connection) -> tuple[int, int, int]:
    row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return (int(row[0]), int(row[1]), int(row[2]))


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")
