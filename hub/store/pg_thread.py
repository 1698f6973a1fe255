"""``transaction_on_thread`` on PostgreSQL: a synchronous connection on a thread of its own.

Like SQLite's database thread: the work (which awaits only its ``Tx``) runs to its end on that
thread, so a transaction of hundreds of statements costs one hop from the event loop instead of
one loop round trip per statement (the network waits release the GIL). A caller cancelled before
the commit rolls back, and the caller waits for that before it lets the next transaction in.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg

from hub.errors import StoreError
from hub.store.dialect import pg_statement
from hub.store.interface import Params, Row, Tx, Work, run_to_end
from hub.store.pg_common import (
    COLUMN_TYPES_SQL,
    ColumnTypes,
    bulk_update,
    copy_statement,
    register_adapters,
    row_factory,
    translate,
)

T = TypeVar("T")


class PgThreadTx(Tx):
    """Statements on the thread's connection; every await completes at once."""

    __slots__ = ("_conn", "_types")
    dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection[Any], types: ColumnTypes) -> None:
        self._conn = conn
        self._types = types

    async def execute(self, sql: str, params: Params = ()) -> int:
        try:
            return max(self._conn.execute(pg_statement(sql), params).rowcount, 0)
        except psycopg.Error as exc:
            raise translate(exc, "database statement") from exc

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        batch = list(rows)
        if not batch:
            return 0
        try:
            with self._conn.cursor() as cursor:
                cursor.executemany(pg_statement(sql), batch)
                return max(cursor.rowcount, 0)
        except psycopg.Error as exc:
            raise translate(exc, "database statement") from exc

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        try:
            row: Row | None = self._conn.execute(pg_statement(sql), params).fetchone()
            return row
        except psycopg.Error as exc:
            raise translate(exc, "database query") from exc

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            return list(self._conn.execute(pg_statement(sql), params).fetchall())
        except psycopg.Error as exc:
            raise translate(exc, "database query") from exc

    async def lock(self, *keys: str) -> None:
        for key in sorted(set(keys)):
            await self.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (key,))

    async def compute(self, fn: Callable[[], T]) -> T:
        """Already off the event loop: run it here."""
        return fn()

    async def insert_many(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        try:
            types = self._types_of(table, columns)
            with (
                self._conn.cursor() as cursor,
                cursor.copy(copy_statement(table, columns)) as copy,
            ):
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as exc:
            raise translate(exc, "database copy") from exc

    async def update_many(
        self,
        table: str,
        keys: Sequence[str],
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        also: str = "",
        where: str = "",
    ) -> int:
        """COPY into a temporary table, then one UPDATE ... FROM (:func:`bulk_update`)."""
        batch = list(rows)
        if not batch:
            return 0
        try:
            types = self._types_of(table, (*keys, *columns))
            temp, prepare, update = bulk_update(table, keys, columns, types, also=also, where=where)
            for statement in prepare:
                self._conn.execute(statement)
            with self._conn.cursor() as cursor:
                with cursor.copy(copy_statement(temp, (*keys, *columns))) as copy:
                    copy.set_types(types)
                    for row in batch:
                        copy.write_row(row)
                return max(cursor.execute(update.encode()).rowcount, 0)
        except psycopg.Error as exc:
            raise translate(exc, "database update") from exc

    def _types_of(self, table: str, columns: Sequence[str]) -> list[str]:
        """The columns' type names (binary COPY needs them), read once per table."""
        known = self._types.get(table)
        if known is None or any(c not in known for c in columns):
            found = self._conn.execute(COLUMN_TYPES_SQL, (table,)).fetchall()
            known = self._types[table] = {r[0]: r[1] for r in found}
        return [known[c] for c in columns]


class _Cancelled(Exception):
    """The awaiting task was cancelled before the commit."""


class PgThread:
    """One connection, one thread; :meth:`transaction` runs work there (one at a time)."""

    def __init__(self, url: str, types: ColumnTypes, *, connect_timeout_s: float) -> None:
        self._url = url
        self._types = types
        self._timeout = connect_timeout_s
        self._executor: ThreadPoolExecutor | None = None
        self._conn: psycopg.Connection[Any] | None = None

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-store-pg")
        await self._submit(self._connection)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        await asyncio.wrap_future(executor.submit(self._disconnect))
        await asyncio.to_thread(executor.shutdown, wait=True)

    def _connection(self) -> psycopg.Connection[Any]:
        """The thread's connection, (re)connected when missing or broken (a server restart)."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._disconnect()
            conn = psycopg.connect(
                self._url,
                autocommit=True,
                row_factory=row_factory,
                connect_timeout=max(1, int(self._timeout)),
            )
            register_adapters(conn)
            self._conn = conn
        return self._conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def _submit(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise StoreError("the store is not open")
        try:
            return await asyncio.wrap_future(self._executor.submit(fn))
        except psycopg.Error as exc:
            raise translate(exc, "database transaction") from exc

    async def transaction(self, work: Work[T]) -> T:
        cancelled = threading.Event()

        def run() -> T:
            conn = self._connection()
            conn.execute(b"BEGIN ISOLATION LEVEL READ COMMITTED")
            try:
                result = run_to_end(work(PgThreadTx(conn, self._types)))
                if cancelled.is_set():
                    raise _Cancelled
                conn.execute(b"COMMIT")
            except BaseException:
                if (
                    not conn.closed
                    and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
                ):
                    try:
                        conn.execute(b"ROLLBACK")
                    except psycopg.Error:
                        conn.close()  # reconnected on the next transaction
                raise
            return result

        future = asyncio.ensure_future(self._submit(run))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            cancelled.set()
            # Let it roll back before the caller releases the hub's write lock.
            await asyncio.gather(future, return_exceptions=True)
            raise
