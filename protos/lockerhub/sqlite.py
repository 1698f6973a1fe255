"""One SQLite connection on a thread we own, and one migration runner: used by hub, edge and OCPP.

sqlite3 connections may only be used on the thread that made them, and their calls block; so each
:class:`Database` starts one worker thread, opens the connection there and runs every piece of
work there, FIFO. Work is a plain function of the connection: a whole transaction costs one hop
to the thread, and no library internals are involved.

A transaction whose awaiting task is cancelled commits nothing: the worker checks a flag before it
starts and again before ``COMMIT``, and rolls back instead. (It does not use
``Connection.interrupt``: that aborts whatever statement runs at that moment, possibly another
caller's.) A cancellation that arrives after the commit point cannot undo the commit; the caller
then sees the cancellation of an operation that did happen, which retried operations must tolerate
(they are idempotent by key).

sqlite3 errors propagate unchanged: each component translates them into its own exception tree.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from lockerhub.files import FILE_MODE, private_file

T = TypeVar("T")

DEFAULT_PRAGMAS: tuple[str, ...] = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)


class TransactionCancelled(sqlite3.OperationalError):
    """The task awaiting a transaction was cancelled before its commit: it was rolled back."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: static SQL (one or more statements), applied once, recorded with it."""

    version: int
    description: str
    sql: str


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> int:
    """Apply the migrations newer than the database's ``schema_version``; return the version.

    Each migration runs in its own transaction together with the row that records it, so a crash
    leaves either both or neither. The SQL is the project's own static text; the version and the
    description travel as parameters.

    Raises:
        sqlite3.DatabaseError: the database is newer than ``migrations`` know, or a step failed
            (that step is rolled back).
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_ms INTEGER NOT NULL)"
    )
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    current = int(row[0]) if row else 0
    known = max((m.version for m in migrations), default=0)
    if current > known:
        raise sqlite3.DatabaseError(
            f"schema version {current} is newer than this program's {known}: upgrade the program"
        )
    for step in sorted(migrations, key=lambda m: m.version):
        if step.version <= current:
            continue
        # executescript leaves the transaction its BEGIN opened: the record joins it.
        conn.executescript(f"BEGIN IMMEDIATE;\n{step.sql}")
        try:
            conn.execute(
                "INSERT INTO schema_version VALUES "
                "(?, ?, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))",
                (step.version, step.description),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return known


async def open_database(
    path: Path,
    setup: Callable[[sqlite3.Connection], T],
    *,
    pragmas: Sequence[str] = DEFAULT_PRAGMAS,
    thread_name: str = "sqlite",
) -> tuple[Database, T]:
    """Open a :class:`Database` and run ``setup`` (migrations, loads) on its thread.

    The caller owns the returned database (exit it to close). When opening or ``setup`` fails,
    the thread and connection are closed again and the error propagates unchanged, so each
    component translates it into its own exception tree.
    """
    db = Database(path, pragmas=pragmas, thread_name=thread_name)
    await db.__aenter__()
    try:
        return db, await db.run(setup)
    except BaseException:
        await db.__aexit__(None, None, None)
        raise


class Database:
    """Async context manager: one sqlite3 connection living on its own worker thread.

    Args:
        path: the database file, kept 0600 with its -wal and -shm files (its folder is made,
            0700, when missing).
        pragmas: statements run once after opening.
        thread_name: names the worker thread (seen in stack dumps).
    """

    def __init__(
        self,
        path: Path,
        *,
        pragmas: Sequence[str] = DEFAULT_PRAGMAS,
        thread_name: str = "sqlite",
    ) -> None:
        self._path = path
        self._pragmas = tuple(pragmas)
        self._thread_name = thread_name
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    @property
    def path(self) -> Path:
        return self._path

    async def __aenter__(self) -> Self:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._thread_name)
        try:
            self._conn = await self._submit(self._open)
        except BaseException:
            await self._shutdown()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._shutdown()

    def _open(self) -> sqlite3.Connection:
        # SQLite creates its -wal and -shm files with the database file's mode, so the file is
        # made 0600 first; files left by an older version are tightened here too.
        private_file(self._path)
        # Autocommit mode: every transaction is explicit (BEGIN IMMEDIATE ... COMMIT).
        conn = sqlite3.connect(self._path, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            for pragma in self._pragmas:
                conn.execute(pragma)
            for suffix in ("-wal", "-shm"):
                side = self._path.with_name(self._path.name + suffix)
                if side.exists():
                    side.chmod(FILE_MODE)
        except BaseException:
            conn.close()
            raise
        return conn

    async def _shutdown(self) -> None:
        executor, self._executor = self._executor, None
        conn, self._conn = self._conn, None
        if executor is None:
            return
        if conn is not None:
            # Queued behind any work still running, so nothing uses the connection after this.
            await asyncio.wrap_future(executor.submit(conn.close))
        await asyncio.to_thread(executor.shutdown, wait=True)

    async def _submit(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise sqlite3.ProgrammingError(f"database {self._path} is not open")
        return await asyncio.wrap_future(self._executor.submit(fn))

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError(f"database {self._path} is not open")
        return self._conn

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(conn)`` on the database thread (reads, single statements, pragmas)."""
        conn = self._require()
        return await self._submit(lambda: work(conn))

    async def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(conn)`` as one write transaction on the database thread.

        Committed when ``work`` returns, rolled back when it raises or when the awaiting task is
        cancelled before the commit point.
        """
        conn = self._require()
        cancelled = threading.Event()

        def run() -> T:
            if cancelled.is_set():
                raise TransactionCancelled("transaction cancelled before it started")
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                if cancelled.is_set():
                    raise TransactionCancelled("transaction cancelled before its commit")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        try:
            return await self._submit(run)
        except asyncio.CancelledError:
            cancelled.set()
            raise
