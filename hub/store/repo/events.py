"""Device events (the exactly-once ledger) and alarms."""

from __future__ import annotations

from hub.store import Tx
from hub.store.repo import ROWS_PER_STATEMENT


async def record_event(
    tx: Tx, device_id: str, seq: int, event_id: str, type_: str, device_ts_ms: int, received_ms: int
) -> bool:
    """Add an event to the ledger; False when (device, seq) or event_id was already applied.

    The unique keys decide, inside the caller's transaction (the one applying the event): of two
    hubs racing on a redelivery, the second waits for the first's commit (SQLite: the write lock;
    PostgreSQL: the unique index entry) and then inserts nothing, so only one applies it.
    """
    changed = await tx.execute(
        "INSERT INTO device_events (device, seq, event_id, type, device_ts_ms, "
        "received_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (device_id, seq, event_id, type_, device_ts_ms, received_ms),
    )
    return changed == 1


async def add_alarm(
    tx: Tx,
    device_id: str,
    *,
    kind: str,
    compartment_id: str,
    detail: str,
    active: bool,
    device_ts_ms: int,
    received_ms: int,
) -> None:
    await tx.execute(
        "INSERT INTO alarms (device, kind, compartment, detail, active, device_ts_ms, received_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (device_id, kind, compartment_id, detail, int(active), device_ts_ms, received_ms),
    )


async def record_events(tx: Tx, rows: list[tuple[str, int, str, str, int, int]]) -> int:
    """:func:`record_event` for many (device, seq, event_id, type, device_ts_ms, received_ms)
    rows; returns how many were new (the caller compares it with ``len(rows)``)."""
    added = 0
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk))
        added += await tx.execute(
            "INSERT INTO device_events (device, seq, event_id, type, device_ts_ms, "  # noqa: S608
            f"received_ms) VALUES {values} ON CONFLICT DO NOTHING",
            [value for row in chunk for value in row],
        )
    return added


async def seqs_between(tx: Tx, device_id: str, low: int, high: int) -> list[int]:
    """The seqs of ``device_id`` in the ledger from ``low`` to ``high``, ascending."""
    rows = await tx.fetchall(
        "SELECT seq FROM device_events WHERE device = ? AND seq >= ? AND seq <= ? ORDER BY seq",
        (device_id, low, high),
    )
    return [int(r[0]) for r in rows]
