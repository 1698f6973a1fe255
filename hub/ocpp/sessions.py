"""Charging sessions (OCPP transactions) with their energy, in a small SQLite file.

Id tags (RFID cards) are kept only as a SHA-256 digest: enough to match a known card in an
audit, nothing readable in the file or in aiosqlite's debug log.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import TracebackType
from typing import Self

import aiosqlite

from hub.errors import StoreError

_SCHEMA = """
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
CREATE INDEX IF NOT EXISTS charging_sessions_pile ON charging_sessions(pile, stopped_ms);
"""


def tag_digest(id_tag: str) -> str:
    return hashlib.sha256(id_tag.encode()).hexdigest()


class SessionStore:
    """Async context manager over the sessions file; one connection, short transactions."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: aiosqlite.Connection | None = None

    async def __aenter__(self) -> Self:
        try:
            self._conn = await aiosqlite.connect(self._path)
            self._conn.row_factory = aiosqlite.Row
            await self._conn.executescript(_SCHEMA)
            await self._conn.commit()
        except (aiosqlite.Error, OSError) as exc:
            await self._close()
            raise StoreError(f"ocpp.sessions_path: cannot open {self._path}: {exc}") from exc
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
            await self._conn.close()
            self._conn = None

    def _require(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StoreError("session store is not open")
        return self._conn

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
        conn = self._require()
        try:
            cur = await conn.execute(
                "INSERT INTO charging_sessions (pile, site, connector, id_tag_sha256, "
                "meter_start_wh, started_ms) VALUES (?, ?, ?, ?, ?, ?)",
                (pile, site, connector, tag_digest(id_tag), meter_start_wh, now_ms),
            )
            await conn.commit()
        except aiosqlite.Error as exc:
            raise StoreError(f"cannot store charging session: {exc}") from exc
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    async def stop(
        self, transaction_id: int, *, pile: str, meter_stop_wh: float, reason: str, now_ms: int
    ) -> float | None:
        """Close a session of ``pile``; returns its energy in Wh, None if unknown or closed."""
        conn = self._require()
        try:
            async with conn.execute(
                "SELECT meter_start_wh FROM charging_sessions WHERE transaction_id = ? "
                "AND pile = ? AND stopped_ms IS NULL",
                (transaction_id, pile),
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                return None
            energy = max(0.0, meter_stop_wh - float(row["meter_start_wh"]))
            await conn.execute(
                "UPDATE charging_sessions SET meter_stop_wh = ?, energy_wh = ?, stopped_ms = ?, "
                "stop_reason = ? WHERE transaction_id = ?",
                (meter_stop_wh, energy, now_ms, reason[:32], transaction_id),
            )
            await conn.commit()
        except aiosqlite.Error as exc:
            raise StoreError(f"cannot close charging session: {exc}") from exc
        return energy

    async def open_session(self, pile: str, transaction_id: int) -> bool:
        """True if ``transaction_id`` is a running session of ``pile``."""
        conn = self._require()
        async with conn.execute(
            "SELECT 1 FROM charging_sessions WHERE transaction_id = ? AND pile = ? "
            "AND stopped_ms IS NULL",
            (transaction_id, pile),
        ) as cur:
            return await cur.fetchone() is not None

    async def sessions(self, pile: str) -> list[dict[str, object]]:
        """All sessions of a pile, oldest first (ops and tests)."""
        conn = self._require()
        async with conn.execute(
            "SELECT transaction_id, connector, meter_start_wh, meter_stop_wh, energy_wh, "
            "started_ms, stopped_ms, stop_reason FROM charging_sessions WHERE pile = ? "
            "ORDER BY transaction_id",
            (pile,),
        ) as cur:
            return [dict(r) for r in await cur.fetchall()]
