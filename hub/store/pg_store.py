"""The PostgreSQL back end (psycopg 3, async, with a psycopg_pool connection pool).

Several hubs share one database. Write transactions run at READ COMMITTED; what must not race
across hubs takes a lock first (:meth:`PgTx.lock`: transaction-scoped advisory locks, e.g. one per
site for allocation) and changes rows with conditional updates whose row counts are checked.
Within one hub, write transactions are serialised by an asyncio lock, exactly as on SQLite, so
the in-memory state that follows commits sees them in one order. Reads use their own pooled
connections in REPEATABLE READ snapshots and never wait for a write.

A serialization failure or a deadlock becomes :class:`hub.errors.StoreConflict`;
:meth:`PgBackend.run` retries its work on it with a bounded, jittered backoff. Every other
psycopg error becomes :class:`hub.errors.StoreError`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from hub.errors import StoreError, StoreUnavailable
from hub.store.dialect import pg_schema, pg_statement
from hub.store.interface import Backend, Migrations, Params, Row, Tx, Work
from hub.store.pg_common import (
    COLUMN_TYPES_SQL,
    ColumnTypes,
    bulk_update,
    copy_statement,
    register_adapters,
    row_factory,
    translate,
)
from hub.store.pg_thread import PgThread

log = logging.getLogger(__name__)
T = TypeVar("T")


class PgTx(Tx):
    """Statements on one pooled connection, inside the transaction its owner opened."""

    __slots__ = ("_conn", "_types")
    dialect = "postgresql"

    def __init__(self, conn: psycopg.AsyncConnection[Any], types: ColumnTypes) -> None:
        self._conn = conn
        self._types = types

    async def execute(self, sql: str, params: Params = ()) -> int:
        try:
            cursor = await self._conn.execute(pg_statement(sql), params)
            return max(cursor.rowcount, 0)
        except psycopg.Error as exc:
            raise translate(exc, "database statement") from exc

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        batch = list(rows)
        if not batch:
            return 0
        try:
            async with self._conn.cursor() as cursor:
                # psycopg runs this in pipeline mode: one round trip for the whole batch.
                await cursor.executemany(pg_statement(sql), batch)
                return max(cursor.rowcount, 0)
        except psycopg.Error as exc:
            raise translate(exc, "database statement") from exc

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        try:
            cursor = await self._conn.execute(pg_statement(sql), params)
            row: Row | None = await cursor.fetchone()
            return row
        except psycopg.Error as exc:
            raise translate(exc, "database query") from exc

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            cursor = await self._conn.execute(pg_statement(sql), params)
            return list(await cursor.fetchall())
        except psycopg.Error as exc:
            raise translate(exc, "database query") from exc

    async def lock(self, *keys: str) -> None:
        for key in sorted(set(keys)):
            await self.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (key,))

    async def insert_many(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        """Bulk insert with binary COPY (the fastest path PostgreSQL has)."""
        statement = copy_statement(table, columns)
        try:
            types = await self._column_types(table, columns)
            async with self._conn.cursor() as cursor, cursor.copy(statement) as copy:
                copy.set_types(types)
                for row in rows:
                    await copy.write_row(row)
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
        """COPY into a temporary table, then one UPDATE ... FROM (``pg_common.bulk_update``)."""
        batch = list(rows)
        if not batch:
            return 0
        try:
            types = await self._column_types(table, (*keys, *columns))
            temp, prepare, update = bulk_update(table, keys, columns, types, also=also, where=where)
            for statement in prepare:
                await self._conn.execute(statement)
            async with self._conn.cursor() as cursor:
                async with cursor.copy(copy_statement(temp, (*keys, *columns))) as copy:
                    copy.set_types(types)
                    for row in batch:
                        await copy.write_row(row)
                await cursor.execute(update.encode())
                return max(cursor.rowcount, 0)
        except psycopg.Error as exc:
            raise translate(exc, "database update") from exc

    async def _column_types(self, table: str, columns: Sequence[str]) -> list[str]:
        """The columns' type names (binary COPY needs them), read once per table."""
        known = self._types.get(table)
        if known is None or any(c not in known for c in columns):
            cursor = await self._conn.execute(COLUMN_TYPES_SQL, (table,))
            known = {row[0]: row[1] for row in await cursor.fetchall()}
            self._types[table] = known
        return [known[c] for c in columns]


class PgBackend(Backend):
    """A connection pool on one PostgreSQL database; migrates it once on open."""

    def __init__(
        self,
        url: str,
        migrations: Migrations,
        *,
        version_table: str = "schema_version",
        pool_size: int = 4,
        connect_timeout_s: float = 10.0,
    ) -> None:
        if not version_table.isidentifier():
            raise ValueError(f"bad version table name {version_table!r}")
        self._url = url
        self._migrations = tuple(migrations)
        self._version_table = version_table
        self._pool_size = pool_size
        self._timeout = connect_timeout_s
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self._lock = asyncio.Lock()
        self._types: ColumnTypes = {}
        self._thread = PgThread(url, self._types, connect_timeout_s=connect_timeout_s)

    async def open(self) -> None:
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            self._url,
            min_size=1,
            max_size=max(2, self._pool_size),
            kwargs={"autocommit": True, "row_factory": row_factory},
            configure=_configure,
            open=False,
            timeout=self._timeout,
            name="hub-store",
        )
        try:
            await pool.open(wait=True, timeout=self._timeout)
            self._pool = pool
            self.schema_version = await self._migrate()
            await self._thread.open()
        except (psycopg.Error, OSError, TimeoutError) as exc:
            await pool.close()
            await self._thread.close()
            self._pool = None
            raise StoreError(f"cannot open database {_redacted(self._url)}: {exc}") from exc
        except BaseException:
            await pool.close()
            await self._thread.close()
            self._pool = None
            raise

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            async with self._lock:
                await pool.close()
                await self._thread.close()

    async def _migrate(self) -> int:
        """Apply missing migrations in one transaction under an advisory lock, so that hubs
        starting together migrate once (the others wait, then find nothing to do)."""
        known = max((m[0] for m in self._migrations), default=0)
        table = self._version_table  # an identifier (checked in __init__), never user input
        async with self._pool_required().connection() as conn, conn.transaction():
            # One lock per version table: every hub that migrates this schema takes it.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"migrate:{table}",)
            )
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (version BIGINT PRIMARY KEY, "
                "description TEXT NOT NULL, applied_ms BIGINT NOT NULL)".encode()
            )
            cursor = await conn.execute(
                f"SELECT COALESCE(MAX(version), 0) FROM {table}".encode()  # noqa: S608
            )
            row = await cursor.fetchone()
            current = int(row[0]) if row else 0
            if current > known:
                raise StoreError(
                    f"schema version {current} is newer than this program's {known}: "
                    "upgrade the program"
                )
            for version, description, sql in sorted(self._migrations):
                if version <= current:
                    continue
                await conn.execute(pg_schema(sql).encode())  # several statements, no parameters
                await conn.execute(
                    f"INSERT INTO {table} VALUES "  # noqa: S608
                    "(%s, %s, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT)",
                    (version, description),
                )
        return known

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        pool = self._pool_required()
        async with self._lock, _connection(pool) as conn:
            await _run(conn, "BEGIN ISOLATION LEVEL READ COMMITTED")
            try:
                yield PgTx(conn, self._types)
            except BaseException:
                await asyncio.shield(_rollback(conn))
                raise
            await _run(conn, "COMMIT")

    async def run(self, work: Work[T]) -> T:
        """One attempt on the store's thread (``Store`` retries a :class:`StoreConflict`)."""
        self._pool_required()
        async with self._lock:
            return await self._thread.transaction(work)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        pool = self._pool_required()
        async with _connection(pool) as conn:
            await _run(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ")
            try:
                yield PgTx(conn, self._types)
            finally:
                await asyncio.shield(_rollback(conn))

    async def erase_history(self) -> None:
        # Pooled connections are in autocommit, which VACUUM needs: it clears the dead tuples
        # (the purged numbers) from the pages of the tables that held personal data.
        pool = self._pool_required()
        async with _connection(pool) as conn:
            await _run(conn, "VACUUM recipient_contacts, notice_outbox, parcels")

    def _pool_required(self) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
        if self._pool is None:
            raise StoreError("the store is not open")
        return self._pool


@asynccontextmanager
async def _connection(
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]],
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    try:
        async with pool.connection() as conn:
            yield conn
    except (psycopg.Error, TimeoutError) as exc:  # PoolTimeout is a psycopg.Error
        if isinstance(exc, psycopg.Error) and not isinstance(exc, psycopg.OperationalError):
            raise translate(exc, "database") from exc
        raise StoreUnavailable(f"database unavailable: {exc}") from exc


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    register_adapters(conn)


async def _run(conn: psycopg.AsyncConnection[Any], sql: str) -> None:
    try:
        await conn.execute(sql.encode())
    except psycopg.Error as exc:
        raise translate(exc, "database transaction") from exc


async def _rollback(conn: psycopg.AsyncConnection[Any]) -> None:
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await conn.execute(b"ROLLBACK")
    except psycopg.Error:
        log.warning("rollback failed; the pool discards the connection")


def _redacted(url: str) -> str:
    """The URL without its password (it may be in a log line or an error)."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    if ":" not in creds:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
