"""Where an agent's store lives: a file of its own (a real cabinet), or a fleet's shared database.

The agent asks a :class:`StoreProvider` for its store. A cabinet in the field uses the default,
:class:`OwnFile` (``storage.path``, one database thread per agent). ``lockerhub sim fleet`` hands
its agents a :class:`SharedDatabase` instead: thousands of simulated cabinets in one process share
one SQLite file and one database thread, each keeping its own rows (``edge.sql``), its own boot
counter, sequence numbers and outbox. A commit still returns only once it is in the database, so an
event is stored before it is published and a killed process loses nothing it committed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from edge.errors import StorageError
from edge.schema import prepare_fleet
from edge.settings import EdgeSettings
from edge.store import Store
from lockerhub.sqlite import Database, open_database

# WAL with synchronous=NORMAL: a commit is in the WAL (the OS has it) before it returns, so a
# SIGKILL of the fleet loses nothing committed; only a power cut could, which a simulator on one
# machine does not model. FULL would cost one fsync per commit on one thread for the whole fleet.
FLEET_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
    "PRAGMA cache_size=-32768",  # 32 MiB: every cabinet's hot rows stay in memory
)


class StoreProvider(Protocol):
    """Makes the (unentered) store of the agent with ``settings``."""

    def store_for(self, settings: EdgeSettings) -> Store: ...


class OwnFile:
    """A cabinet's own database at ``storage.path`` (the default)."""

    def store_for(self, settings: EdgeSettings) -> Store:
        s = settings.storage
        return Store(
            s.path,
            outbox_max=s.outbox_max,
            outbox_max_bytes=s.outbox_max_bytes,
            resend_window=s.resend_window,
        )


class SharedDatabase:
    """One database file and one thread for a whole fleet; an async context manager.

    Enter it before the agents and exit it after them. ``storage.path`` of the agents' settings is
    not used; each agent's rows are keyed by its device id, so two agents with one id would share
    them (the fleet gives each cabinet its own id).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: Database | None = None

    @property
    def path(self) -> Path:
        return self._path

    async def __aenter__(self) -> Self:
        try:
            self._db, _ = await open_database(
                self._path, prepare_fleet, pragmas=FLEET_PRAGMAS, thread_name="fleet-sqlite"
            )
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open fleet database {self._path}: {exc}") from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        db, self._db = self._db, None
        if db is not None:
            try:
                await db.__aexit__(exc_type, exc, tb)
            except sqlite3.Error as err:
                raise StorageError(f"cannot close fleet database: {err}") from err

    async def backlog(self) -> tuple[int, int | None]:
        """Entries waiting in all the fleet's outboxes, and when the oldest business event among
        them was made (epoch ms; None: no event waiting)."""
        if self._db is None:
            raise StorageError("fleet database is not open")
        try:
            row = await self._db.run(
                lambda conn: conn.execute(
                    "SELECT COUNT(*), MIN(CASE WHEN business = 1 THEN created_ms END) FROM outbox"
                ).fetchone()
            )
        except sqlite3.Error as exc:
            raise StorageError(f"fleet database read failed: {exc}") from exc
        return int(row[0]), None if row[1] is None else int(row[1])

    def store_for(self, settings: EdgeSettings) -> Store:
        if self._db is None:
            raise StorageError("fleet database is not open")
        s = settings.storage
        return Store.attached(
            self._db,
            settings.device.id,
            outbox_max=s.outbox_max,
            outbox_max_bytes=s.outbox_max_bytes,
            resend_window=s.resend_window,
        )
