"""The live event journal behind WatchEvents: one row per parcel transition or alarm change.

The row id is the stream's durable cursor: rows are written in the same transaction as the change
they describe, so a client resuming after cursor N sees every later change once, in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.store import Tx


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journal row. ``kind`` is "parcel" (ref = parcel id, state = new state) or "alarm"
    (ref = alarm id, state = raised/acknowledged/cleared)."""

    cursor: int
    ts_ms: int
    site: str
    kind: str
    ref: str
    state: str
    actor: str
    location: str
    alarm_kind: str
    device: str
    compartment: str


async def parcel_changed(
    tx: Tx, parcel_id: str, state: str, ts_ms: int, actor: str, location: str
) -> None:
    """Journal a parcel transition (the parcel's site is read from its row)."""
    await tx.execute(
        "INSERT INTO live_events (ts_ms, site, kind, ref, state, actor, location) "
        "SELECT ?, site, 'parcel', id, ?, ?, ? FROM parcels WHERE id = ?",
        (ts_ms, state, actor, location, parcel_id),
    )


async def parcels_changed(tx: Tx, rows: list[tuple[str, str, str, int, str, str]]) -> None:
    """Journal many parcel transitions at once: (parcel id, site, state, ts_ms, actor,
    location) each, in order."""
    await tx.insert_many(
        "live_events",
        ("ts_ms", "site", "kind", "ref", "state", "actor", "location"),
        [
            (ts, site, "parcel", pid, state, actor, location)
            for pid, site, state, ts, actor, location in rows
        ],
    )


async def alarm_changed(
    tx: Tx,
    *,
    alarm_id: int,
    status: str,
    ts_ms: int,
    site: str,
    alarm_kind: str,
    device: str,
    compartment: str,
    actor: str,
) -> None:
    await tx.execute(
        "INSERT INTO live_events (ts_ms, site, kind, ref, state, actor, alarm_kind, device, "
        "compartment) VALUES (?, ?, 'alarm', ?, ?, ?, ?, ?, ?)",
        (ts_ms, site, str(alarm_id), status, actor, alarm_kind, device, compartment),
    )


async def last_cursor(tx: Tx) -> int:
    row = await tx.fetchone("SELECT COALESCE(MAX(id), 0) AS n FROM live_events")
    return int(row["n"]) if row else 0


async def ids_after(tx: Tx, cursor: int, limit: int) -> list[int]:
    """The ids above ``cursor``, ascending (every site: to see gaps in the id sequence)."""
    rows = await tx.fetchall(
        "SELECT id FROM live_events WHERE id > ? ORDER BY id LIMIT ?", (cursor, limit)
    )
    return [int(r[0]) for r in rows]


async def after(
    tx: Tx, cursor: int, *, upto: int, site: str = "", limit: int = 500, carrier: str = ""
) -> list[JournalEntry]:
    """Entries with a cursor above ``cursor`` and at most ``upto`` (optionally of one site),
    oldest first. With ``carrier``: only transitions of that carrier's parcels (no alarms:
    cabinets are shared)."""
    clauses: list[str] = ["e.id > ?", "e.id <= ?"]
    params: list[object] = [cursor, upto]
    join = ""
    if site:
        clauses.append("e.site = ?")
        params.append(site)
    if carrier:
        join = "JOIN parcels p ON p.id = e.ref "
        clauses.append("e.kind = 'parcel' AND p.carrier = ?")
        params.append(carrier)
    rows = await tx.fetchall(
        f"SELECT e.* FROM live_events e {join}WHERE {' AND '.join(clauses)} "  # noqa: S608
        "ORDER BY e.id LIMIT ?",
        [*params, limit],
    )
    return [
        JournalEntry(
            cursor=r["id"],
            ts_ms=r["ts_ms"],
            site=r["site"],
            kind=r["kind"],
            ref=r["ref"],
            state=r["state"],
            actor=r["actor"],
            location=r["location"],
            alarm_kind=r["alarm_kind"],
            device=r["device"],
            compartment=r["compartment"],
        )
        for r in rows
    ]


async def notice(tx: Tx, *, ts_ms: int, site: str, ref: str, kind: str) -> None:
    """Journal a service notice for partners (``ref`` "maintenance:<id>" or "incident:<id>",
    ``kind`` e.g. "maintenance_scheduled"); operator streams skip these rows."""
    await tx.execute(
        "INSERT INTO live_events (ts_ms, site, kind, ref, state) VALUES (?, ?, 'notice', ?, ?)",
        (ts_ms, site, ref, kind),
    )
