"""A device's marked hole in its event sequence (``devices.gap_since_ms``, ``gap_from``)."""

from __future__ import annotations

from typing import NamedTuple

from hub.store import Tx


class GapMark(NamedTuple):
    """A device's marked hole: events ``first..last`` (its highest seq) to check."""

    device: str
    site: str
    first: int
    last: int
    since_ms: int


async def mark_gap(tx: Tx, device_id: str, first: int, now_ms: int) -> None:
    """Mark a hole from ``first`` (kept when one is already marked: it is the lower)."""
    await tx.execute(
        "UPDATE devices SET gap_since_ms = ?, gap_from = ? WHERE id = ? AND gap_since_ms = 0",
        (now_ms, first, device_id),
    )


async def gaps_due(tx: Tx, cutoff_ms: int, limit: int) -> list[str]:
    """Devices whose hole was marked at or before ``cutoff_ms``, by id."""
    rows = await tx.fetchall(
        "SELECT id FROM devices WHERE gap_since_ms > 0 AND gap_since_ms <= ? ORDER BY id LIMIT ?",
        (cutoff_ms, limit),
    )
    return [r[0] for r in rows]


async def gap_marks(tx: Tx, device_ids: list[str]) -> list[GapMark]:
    marks = ",".join("?" * len(device_ids))
    rows = await tx.fetchall(
        "SELECT id, site, gap_from, last_seq, gap_since_ms FROM devices "  # noqa: S608
        f"WHERE id IN ({marks}) ORDER BY id",
        device_ids,
    )
    return [GapMark(r[0], r[1], int(r[2]), int(r[3]), int(r[4])) for r in rows]


async def clear_gap(tx: Tx, device_id: str) -> None:
    await tx.execute("UPDATE devices SET gap_since_ms = 0 WHERE id = ?", (device_id,))
