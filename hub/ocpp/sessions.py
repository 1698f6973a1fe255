"""Charging sessions (OCPP transactions) with their energy, in a store of their own.

Id tags (RFID cards) are kept only as a SHA-256 digest: enough to match a known card in an
audit, nothing readable in the file or in a debug log. The schema and the SQL live with the
hub's (``hub.store.migrations.charging_sessions``, ``hub.store.repo.charging_sessions``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import TracebackType
from typing import Self

from hub.errors import StoreError
from hub.store import Store, Tx, is_database_url
from hub.store.migrations.charging_sessions import MIGRATIONS
from hub.store.repo import charging_sessions as repo


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
            return await repo.start(
                tx,
                pile=pile,
                site=site,
                connector=connector,
                id_tag_sha256=tag_digest(id_tag),
                meter_start_wh=meter_start_wh,
                now_ms=now_ms,
            )

        return await self._store.transaction_on_thread(work)

    async def stop(
        self, transaction_id: int, *, pile: str, meter_stop_wh: float, reason: str, now_ms: int
    ) -> float | None:
        """Close a session of ``pile``; returns its energy in Wh, None if unknown or closed."""

        async def work(tx: Tx) -> float | None:
            start_wh = await repo.open_meter_start(tx, transaction_id, pile)
            if start_wh is None:
                return None
            energy = max(0.0, meter_stop_wh - start_wh)
            # Conditional: of two hubs closing one session, only the first counts its energy.
            closed = await repo.close(
                tx,
                transaction_id,
                meter_stop_wh=meter_stop_wh,
                energy_wh=energy,
                reason=reason[:32],
                now_ms=now_ms,
            )
            return energy if closed else None

        return await self._store.transaction_on_thread(work)

    async def open_session(self, pile: str, transaction_id: int) -> bool:
        """True if ``transaction_id`` is a running session of ``pile``."""
        async with self._store.read() as tx:
            return await repo.is_open(tx, pile, transaction_id)

    async def sessions(self, pile: str) -> list[dict[str, object]]:
        """All sessions of a pile, oldest first (ops and tests)."""
        async with self._store.read() as tx:
            return await repo.of_pile(tx, pile)
