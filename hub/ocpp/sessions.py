"""Charging sessions (OCPP transactions) with their energy, in a store of their own.

Id tags (RFID cards) are kept only as a SHA-256 digest: enough to match a known card in an
audit, nothing readable in the file or in a debug log.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import TracebackType
from typing import Self

from hub.errors import StoreError
from hub.store import Store, Tx, is_database_url

# Never edit a released migration: append a new one. Portable SQL (hub.store.dialect): the same
# schema in a SQLite file of its own or in the hubs' shared PostgreSQL database.
MIGRATIONS = (
    (
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
    """Async context manager over the sessions' store: a SQLite file (``ocpp.sessions_path``) or
    a PostgreSQL database (``ocpp.sessions_url``, its own ``ocpp_schema_version`` table)."""

    def __init__(self, target: Path | str) -> None:
        self._target = target
        self._store = Store(
            target,
            pool_size=2,
            migrations=MIGRATIONS,
            version_table="ocpp_schema_version",
            thread_name="ocpp-sessions",
        )

    async def __aenter__(self) -> Self:
        try:
            await self._store.__aenter__()
        except StoreError as exc:
            key = "ocpp.sessions_url" if is_database_url(self._target) else "ocpp.sessions_path"
            raise StoreError(f"{key}: {exc}") from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._store.__aexit__(exc_type, exc, tb)

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

        async def work(tx: Tx) -> int:
            row = await tx.fetchone(
                "INSERT INTO charging_sessions (pile, site, connector, id_tag_sha256, "
                "meter_start_wh, started_ms) VALUES (?, ?, ?, ?, ?, ?) RETURNING transaction_id",
                (pile, site, connector, tag_digest(id_tag), meter_start_wh, now_ms),
            )
            assert row is not None
            return int(row["transaction_id"])

        return await self._store.transaction_on_thread(work)

    async def stop(
        self, transaction_id: int, *, pile: str, meter_stop_wh: float, reason: str, now_ms: int
    ) -> float | None:
        """Close a session of ``pile``; returns its energy in Wh, None if unknown or closed."""

        async def work(tx: Tx) -> float | None:
            row = await tx.fetchone(
                "SELECT meter_start_wh FROM charging_sessions WHERE transaction_id = ? "
                "AND pile = ? AND stopped_ms IS NULL",
                (transaction_id, pile),
            )
            if row is None:
                return None
            energy = max(0.0, meter_stop_wh - float(row["meter_start_wh"]))
            # Conditional: of two hubs closing one session, only the first counts its energy.
            changed = await tx.execute(
                "UPDATE charging_sessions SET meter_stop_wh = ?, energy_wh = ?, stopped_ms = ?, "
                "stop_reason = ? WHERE transaction_id = ? AND stopped_ms IS NULL",
                (meter_stop_wh, energy, now_ms, reason[:32], transaction_id),
            )
            return energy if changed == 1 else None

        return await self._store.transaction_on_thread(work)

    async def open_session(self, pile: str, transaction_id: int) -> bool:
        """True if ``transaction_id`` is a running session of ``pile``."""
        async with self._store.read() as tx:
            row = await tx.fetchone(
                "SELECT 1 FROM charging_sessions WHERE transaction_id = ? AND pile = ? "
                "AND stopped_ms IS NULL",
                (transaction_id, pile),
            )
        return row is not None

    async def sessions(self, pile: str) -> list[dict[str, object]]:
        """All sessions of a pile, oldest first (ops and tests)."""
        async with self._store.read() as tx:
            rows = await tx.fetchall(
                "SELECT transaction_id, connector, meter_start_wh, meter_stop_wh, energy_wh, "
                "started_ms, stopped_ms, stop_reason FROM charging_sessions WHERE pile = ? "
                "ORDER BY transaction_id",
                (pile,),
            )
        return [dict(zip(r.keys(), r, strict=True)) for r in rows]
