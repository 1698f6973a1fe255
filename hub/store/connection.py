"""The hub's store: one interface over SQLite (embedded default) or PostgreSQL (several hubs).

``Store(target)`` opens a SQLite file when ``target`` is a path and a PostgreSQL database when it
is a ``postgresql://`` URL; migrations are applied on open. Repositories see only :class:`Tx`
(``?`` placeholders, rows by column name); :mod:`hub.store.dialect` translates for PostgreSQL.

Two ways to write:

* ``async with store.transaction() as tx:`` for ordinary request paths;
* ``await store.transaction_on_thread(work)`` for hot paths and for anything that may lose a race
  with another hub: ``work(tx)`` awaits only ``tx`` (no I/O, no sleeps). On SQLite it runs as one
  hop to the database thread (SQLite's, or the PostgreSQL back end's own thread with a synchronous
  connection); on :class:`hub.errors.StoreConflict` (PostgreSQL serialization failure or
  deadlock, SQLite's file lock held too long by another process) it is run again, so ``work``
  must be safe to run again (reset what it collects at its start).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from hub.errors import StoreConflict, StoreError
from hub.store.interface import Backend, Migrations, Params, Row, Tx, Work
from hub.store.migrations import MIGRATIONS
from hub.store.pg_store import PgBackend
from hub.store.sqlite_store import SqliteBackend

__all__ = ["Params", "Row", "Store", "Tx", "is_database_url"]

T = TypeVar("T")
log = logging.getLogger(__name__)
#: Attempts of one retried transaction, and the backoff before the second (doubled each time,
#: times a jitter of 0.5-1.5).
RETRY_ATTEMPTS = 8
RETRY_BASE_S = 0.005
_URL_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(target: str | Path) -> bool:
    """True for a PostgreSQL URL, False for a SQLite file path."""
    return isinstance(target, str) and target.startswith(_URL_SCHEMES)


class Store:
    """Async context manager owning the database (connection, thread or pool)."""

    def __init__(
        self,
        target: Path | str,
        *,
        pool_size: int = 4,
        migrations: Migrations = MIGRATIONS,
        version_table: str = "schema_version",
        thread_name: str = "hub-store",
    ) -> None:
        """``migrations`` and ``version_table`` let another schema (the OCPP sessions) use the
        same machinery; on a shared PostgreSQL database each schema needs its own table."""
        self._backend: Backend = (
            PgBackend(str(target), migrations, version_table=version_table, pool_size=pool_size)
            if is_database_url(target)
            else SqliteBackend(Path(target), migrations, thread_name=thread_name)
        )
        self._open = False
        # Set (and replaced) after every commit: WatchEvents waits on it instead of polling.
        self._committed = asyncio.Event()

    @property
    def schema_version(self) -> int:
        return self._backend.schema_version

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql"."""
        return "postgresql" if isinstance(self._backend, PgBackend) else "sqlite"

    async def __aenter__(self) -> Self:
        await self._backend.open()
        self._open = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._open = False
        await self._backend.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A write transaction: committed on success, rolled back on any exception or cancel."""
        self._require()
        async with self._backend.transaction() as tx:
            yield tx
        self._signal_commit()

    async def transaction_on_thread(self, work: Work[T]) -> T:
        """Run ``work(tx)`` as ONE write transaction; return its result (module docstring).

        Same guarantees as :meth:`transaction` (committed on success, rolled back on any
        exception or on cancellation before the commit, serialised with every other
        transaction of this hub); ``work`` must await only the ``tx`` it is given.
        """
        self._require()
        for attempt in range(1, RETRY_ATTEMPTS + 1):
            try:
                value = await self._backend.run(work)
            except StoreConflict as exc:
                if attempt == RETRY_ATTEMPTS:
                    raise
                delay = RETRY_BASE_S * 2 ** (attempt - 1) * (0.5 + random.random())  # noqa: S311
                log.info("transaction retried (attempt %d): %s", attempt + 1, exc)
                await asyncio.sleep(delay)
            else:
                self._signal_commit()
                return value
        raise AssertionError("unreachable")

    def _signal_commit(self) -> None:
        self._committed.set()
        self._committed = asyncio.Event()

    def commit_signal(self) -> asyncio.Event:
        """An event set by the next commit (take it before reading, then wait on it)."""
        return self._committed

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """Consistent reads outside a write transaction."""
        self._require()
        async with self._backend.read() as tx:
            yield tx

    async def erase_history(self) -> None:
        """Leave no deleted personal data readable in the database's files (after a purge).

        SQLite: a truncating checkpoint of the write-ahead log (secure_delete zeroes freed
        content). PostgreSQL: VACUUM of the tables that held personal data, so that dead tuples
        are cleared from their pages; WAL segments and archives age out under the operator's
        retention (docs/security.md).

        Raises:
            StoreError: the engine could not complete it.
        """
        self._require()
        await self._backend.erase_history()

    async def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            async with self.read() as tx:
                await tx.fetchone("SELECT 1")
        except StoreError:
            return False
        return True

    def _require(self) -> None:
        if not self._open:
            raise StoreError("the store is not open")
