"""Parcel flow for the metrics: the append-only ``parcels`` and ``parcel_transitions`` tables read
past a cursor (``parcels.seq``, ``parcel_transitions.id``)."""

from __future__ import annotations

from typing import NamedTuple

from hub.models import ParcelState
from hub.store import Tx

_DEPOSITED = str(ParcelState.DEPOSITED)


class Announced(NamedTuple):
    seq: int
    site: str
    electronic_waybill: bool
    reusable_container: bool


class Event(NamedTuple):
    id: int
    state: str
    ts_ms: int
    site: str
    deposited_ms: int | None  # the parcel's last deposit before this event, if any


async def _newest(tx: Tx, sql: str) -> int:
    row = await tx.fetchone(sql)
    return int(row[0] or 0) if row is not None else 0


async def newest_parcel(tx: Tx) -> int:
    """The newest ``parcels.seq`` (0 when there is none)."""
    return await _newest(tx, "SELECT MAX(seq) FROM parcels")


async def newest_transition(tx: Tx) -> int:
    """The newest ``parcel_transitions.id`` (0 when there is none)."""
    return await _newest(tx, "SELECT MAX(id) FROM parcel_transitions")


async def announced_after(tx: Tx, seq: int, *, limit: int) -> list[Announced]:
    """Up to ``limit`` parcels announced after ``seq``, oldest first."""
    rows = await tx.fetchall(
        "SELECT seq, site, electronic_waybill, reusable_container FROM parcels "
        "WHERE seq > ? ORDER BY seq LIMIT ?",
        (seq, limit),
    )
    return [
        Announced(
            int(r["seq"]),
            r["site"],
            bool(r["electronic_waybill"]),
            bool(r["reusable_container"]),
        )
        for r in rows
    ]


async def events_after(tx: Tx, transition_id: int, *, limit: int) -> list[Event]:
    """Up to ``limit`` parcel transitions after ``transition_id``, oldest first, with the parcel's
    site and its last deposit before each (for the dwell time)."""
    rows = await tx.fetchall(
        "SELECT t.id, t.state, t.ts_ms, p.site, "
        "(SELECT MAX(d.ts_ms) FROM parcel_transitions d WHERE d.parcel_id = t.parcel_id "
        " AND d.state = ? AND d.id < t.id) AS deposited_ms "
        "FROM parcel_transitions t JOIN parcels p ON p.id = t.parcel_id "
        "WHERE t.id > ? ORDER BY t.id LIMIT ?",
        (_DEPOSITED, transition_id, limit),
    )
    return [
        Event(
            int(r["id"]),
            r["state"],
            int(r["ts_ms"]),
            r["site"],
            None if r["deposited_ms"] is None else int(r["deposited_ms"]),
        )
        for r in rows
    ]
