"""Charging sessions (OCPP transactions) with their energy, in a small SQLite file.

Id tags (RFID cards) are kept only as a SHA-256 digest: enough to match a known card in an
audit, nothing readable in the file or in a debug log.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from hub.errors import StoreError
from lockerhub.sqlite import Database, Migration, migrate, open_database

T = TypeVar("T")

# Never edit a released migration: append a new one (lockerhub.sqlite.migrate applies them).
MIGRATIONS = (
    Migration(
        1,
        "charging sessions",
        """
        CREATE TABLE IF NOT EXISTS charging_sessions (
            transaction_id INTEGER PRIMARY KEY AUTOINCREMENT,
            pile TEXT NOT NULL,
            site TEXT NOT NULL,
            connector INTEGER NOT NULL,
            id_tag_sha256 TEXT NOT NULL,
            meter_start_wh REAL NOT NULL,
            meter_stop_wh REAL,
            energy_wh REAL NOT NULL DEFAULT 0,
            started_ms INTEGER NOT NULL,
            stopped_ms INTEGER,
            stop_reason TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX IF NOT EXISTS charging_sessions_pile
            ON charging_sessions(pile, stopped_ms);
        """,
    ),
)


def tag_digest(id_tag: str) -> str:
    return hashlib.sha256(id_tag.encode()).hexdigest()


class SessionStore:
    """Async context manager over the sessions file; one connection, short transactions."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: Database | None = None

    async def __aenter__(self) -> Self:
        try:
            self._db, _ = await open_database(
                self._path, lambda conn: migrate(conn, MIGRATIONS), thread_name="ocpp-sessions"
            )
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"ocpp.sessions_path: cannot open {self._path}: {exc}") from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        db, self._db = self._db, None
        if db is not None:
            await db.__aexit__(exc_type, exc, tb)

    async def _write(self, what: str, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None:
            raise StoreError("session store is not open")
        try:
            return await self._db.transaction(work)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot {what}: {exc}") from exc

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None:
            raise StoreError("session store is not open")
        try:
            return await self._db.run(work)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read charging sessions: {exc}") from exc

    async def start(
        self,
        *,
        pile: str,
        site: str,
        connector: int,
        id_tag: str,
        meter_start_wh: float,
        now_ms: int,
    ) -> int:
        """Open a session; returns its transaction id."""

        def work(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO charging_sessions (pile, site, connector, id_tag_sha256, "
                "meter_start_wh, started_ms) VALUES (?, ?, ?, ?, ?, ?)",
                (pile, site, connector, tag_digest(id_tag), meter_start_wh, now_ms),
            )
            assert cur.lastrowid is not None
            return int(cur.lastrowid)

        return await self._write("store charging session", work)

    async def stop(
        self, transaction_id: int, *, pile: str, meter_stop_wh: float, reason: str, now_ms: int
    ) -> float | None:
        """Close a session of ``pile``; returns its energy in Wh, None if unknown or closed."""

        def work(conn: sqlite3.Connection) -> float | None:
            row = conn.execute(
                "SELECT meter_start_wh FROM charging_sessions WHERE transaction_id = ? "
                "AND pile = ? AND stopped_ms IS NULL",
                (transaction_id, pile),
            ).fetchone()
            if row is None:
                return None
            energy = max(0.0, meter_stop_wh - float(row["meter_start_wh"]))
            conn.execute(
                "UPDATE charging_sessions SET meter_stop_wh = ?, energy_wh = ?, stopped_ms = ?, "
                "stop_reason = ? WHERE transaction_id = ?",
                (meter_stop_wh, energy, now_ms, reason[:32], transaction_id),
            )
            return energy

        return await self._write("close charging session", work)

    async def open_session(self, pile: str, transaction_id: int) -> bool:
        """True if ``transaction_id`` is a running session of ``pile``."""
        return await self._read(
            lambda conn: (
                conn.execute(
                    "SELECT 1 FROM charging_sessions WHERE transaction_id = ? AND pile = ? "
                    "AND stopped_ms IS NULL",
                    (transaction_id, pile),
                ).fetchone()
                is not None
            )
        )

    async def sessions(self, pile: str) -> list[dict[str, object]]:
        """All sessions of a pile, oldest first (ops and tests)."""
        return await self._read(
            lambda conn: [
                dict(r)
                for r in conn.execute(
                    "SELECT transaction_id, connector, meter_start_wh, meter_stop_wh, energy_wh, "
                    "started_ms, stopped_ms, stop_reason FROM charging_sessions WHERE pile = ? "
                    "ORDER BY transaction_id",
                    (pile,),
                ).fetchall()
            ]
        )
