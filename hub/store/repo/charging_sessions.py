"""OCPP charging sessions (``charging_sessions``, in the sessions' own store: see
``hub.store.migrations.charging_sessions``)."""

from __future__ import annotations

from hub.store import Tx


async def start(
    tx: Tx,
    *,
    pile: str,
    site: str,
    connector: int,
    id_tag_sha256: str,
    meter_start_wh: float,
    now_ms: int,
) -> int:
    """Insert a running session; returns its transaction id."""
    row = await tx.fetchone(
        "INSERT INTO charging_sessions (pile, site, connector, id_tag_sha256, "
        "meter_start_wh, started_ms) VALUES (?, ?, ?, ?, ?, ?) RETURNING transaction_id",
        (pile, site, connector, id_tag_sha256, meter_start_wh, now_ms),
    )
    assert row is not None
    return int(row["transaction_id"])


async def open_meter_start(tx: Tx, transaction_id: int, pile: str) -> float | None:
    """The start meter reading of ``pile``'s running session ``transaction_id``, else None."""
    row = await tx.fetchone(
        "SELECT meter_start_wh FROM charging_sessions WHERE transaction_id = ? "
        "AND pile = ? AND stopped_ms IS NULL",
        (transaction_id, pile),
    )
    return None if row is None else float(row["meter_start_wh"])


async def close(
    tx: Tx,
    transaction_id: int,
    *,
    meter_stop_wh: float,
    energy_wh: float,
    reason: str,
    now_ms: int,
) -> bool:
    """Close the session if it is still running; True when this call closed it."""
    changed = await tx.execute(
        "UPDATE charging_sessions SET meter_stop_wh = ?, energy_wh = ?, stopped_ms = ?, "
        "stop_reason = ? WHERE transaction_id = ? AND stopped_ms IS NULL",
        (meter_stop_wh, energy_wh, now_ms, reason, transaction_id),
    )
    return changed == 1


async def is_open(tx: Tx, pile: str, transaction_id: int) -> bool:
    """True if ``transaction_id`` is a running session of ``pile``."""
    row = await tx.fetchone(
        "SELECT 1 FROM charging_sessions WHERE transaction_id = ? AND pile = ? "
        "AND stopped_ms IS NULL",
        (transaction_id, pile),
    )
    return row is not None


async def of_pile(tx: Tx, pile: str) -> list[dict[str, object]]:
    """All sessions of ``pile``, oldest first, as column -> value."""
    rows = await tx.fetchall(
        "SELECT transaction_id, connector, meter_start_wh, meter_stop_wh, energy_wh, "
        "started_ms, stopped_ms, stop_reason FROM charging_sessions WHERE pile = ? "
        "ORDER BY transaction_id",
        (pile,),
    )
    return [dict(zip(r.keys(), r, strict=True)) for r in rows]
