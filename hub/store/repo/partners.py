"""Partners (hashed secrets, carrier scopes), their feed, maintenance windows and incidents."""

from __future__ import annotations

from dataclasses import dataclass

from hub.store import Row, Tx


@dataclass(frozen=True, slots=True)
class PartnerRow:
    id: str
    name: str
    carriers: tuple[str, ...]
    expires_ms: int
    revoked: bool
    created_ms: int


@dataclass(frozen=True, slots=True)
class FeedRow:
    """A journal row a partner may see: one of its parcels' transitions, or a notice."""

    cursor: int
    ts_ms: int
    site: str
    kind: str
    ref: str
    state: str
    actor: str
    carrier: str


@dataclass(frozen=True, slots=True)
class Window:
    id: int
    site: str
    starts_ms: int
    ends_ms: int
    reason: str
    scheduled_by: str
    scheduled_ms: int
    cancelled: bool


@dataclass(frozen=True, slots=True)
class IncidentRow:
    id: int
    cause: str
    site: str
    started_ms: int
    ended_ms: int


async def insert_partner(
    tx: Tx,
    *,
    partner_id: str,
    name: str,
    digest: str,
    carriers: tuple[str, ...],
    expires_ms: int,
    now_ms: int,
) -> bool:
    """False when the id is taken."""
    changed = await tx.execute(
        "INSERT INTO partners (id, name, secret_sha256, expires_ms, created_ms) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        (partner_id, name, digest, expires_ms, now_ms),
    )
    if not changed:
        return False
    await tx.executemany(
        "INSERT INTO partner_carriers (partner, carrier) VALUES (?, ?)",
        [(partner_id, c) for c in carriers],
    )
    return True


async def _partner(tx: Tx, row: Row) -> PartnerRow:
    carriers = await tx.fetchall(
        "SELECT carrier FROM partner_carriers WHERE partner = ? ORDER BY carrier", (row["id"],)
    )
    return PartnerRow(
        row["id"],
        row["name"],
        tuple(r["carrier"] for r in carriers),
        row["expires_ms"],
        bool(row["revoked"]),
        row["created_ms"],
    )


async def partner_by_digest(tx: Tx, digest: str) -> PartnerRow | None:
    row = await tx.fetchone("SELECT * FROM partners WHERE secret_sha256 = ?", (digest,))
    return None if row is None else await _partner(tx, row)


async def partner(tx: Tx, partner_id: str) -> PartnerRow | None:
    row = await tx.fetchone("SELECT * FROM partners WHERE id = ?", (partner_id,))
    return None if row is None else await _partner(tx, row)


async def partners(tx: Tx) -> list[PartnerRow]:
    return [await _partner(tx, r) for r in await tx.fetchall("SELECT * FROM partners ORDER BY id")]


async def revoke(tx: Tx, partner_id: str) -> bool:
    return bool(await tx.execute("UPDATE partners SET revoked = 1 WHERE id = ?", (partner_id,)))


async def feed_after(
    tx: Tx, cursor: int, carriers: tuple[str, ...], limit: int, *, upto: int
) -> tuple[list[FeedRow], int]:
    """Rows after ``cursor`` up to ``upto`` a partner scoped to ``carriers`` may see, oldest
    first, and the last journal row examined (so a follower skips others' rows once, not on
    every poll)."""
    marks = ",".join("?" * len(carriers))
    # Only "?" marks are formatted into the text.
    sql = (
        "SELECT e.id, e.ts_ms, e.site, e.kind, e.ref, e.state, e.actor, "  # noqa: S608
        "COALESCE(p.carrier, '') AS carrier FROM live_events e "
        "LEFT JOIN parcels p ON e.kind = 'parcel' AND p.id = e.ref "
        "WHERE e.id > ? AND e.id <= ? AND "
        f"(e.kind = 'notice' OR (e.kind = 'parcel' AND p.carrier IN ({marks}))) "
        "ORDER BY e.id LIMIT ?"
    )
    rows = await tx.fetchall(
        sql,
        (cursor, upto, *carriers, limit),
    )
    found = [
        FeedRow(
            r["id"],
            r["ts_ms"],
            r["site"],
            r["kind"],
            r["ref"],
            r["state"],
            r["actor"],
            r["carrier"],
        )
        for r in rows
    ]
    if len(found) == limit:
        return found, found[-1].cursor
    # Fewer than a page: everything up to the journal's end was examined (inside this read).
    return found, max(cursor, upto)


async def last_journal_id(tx: Tx) -> int:
    row = await tx.fetchone("SELECT COALESCE(MAX(id), 0) AS n FROM live_events")
    return int(row["n"]) if row else 0


def _window(r: Row) -> Window:
    return Window(
        r["id"],
        r["site"],
        r["starts_ms"],
        r["ends_ms"],
        r["reason"],
        r["scheduled_by"],
        r["scheduled_ms"],
        bool(r["cancelled"]),
    )


async def insert_window(
    tx: Tx, *, site: str, starts_ms: int, ends_ms: int, reason: str, actor: str, now_ms: int
) -> Window:
    row = await tx.fetchone(
        "INSERT INTO maintenance_windows (site, starts_ms, ends_ms, reason, scheduled_by, "
        "scheduled_ms) VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
        (site, starts_ms, ends_ms, reason, actor, now_ms),
    )
    assert row is not None
    return _window(row)


async def window(tx: Tx, window_id: int) -> Window | None:
    row = await tx.fetchone("SELECT * FROM maintenance_windows WHERE id = ?", (window_id,))
    return None if row is None else _window(row)


async def cancel_window(tx: Tx, window_id: int) -> None:
    await tx.execute("UPDATE maintenance_windows SET cancelled = 1 WHERE id = ?", (window_id,))


async def windows(tx: Tx, after_ms: int) -> list[Window]:
    rows = await tx.fetchall(
        "SELECT * FROM maintenance_windows WHERE ends_ms > ? ORDER BY starts_ms, id", (after_ms,)
    )
    return [_window(r) for r in rows]


def _incident(r: Row) -> IncidentRow:
    return IncidentRow(r["id"], r["cause"], r["site"], r["started_ms"], r["ended_ms"])


async def open_incident(tx: Tx, *, cause: str, site: str, started_ms: int) -> IncidentRow:
    row = await tx.fetchone(
        "INSERT INTO incidents (cause, site, started_ms) VALUES (?, ?, ?) RETURNING *",
        (cause, site, started_ms),
    )
    assert row is not None
    return _incident(row)


async def close_incident(tx: Tx, incident_id: int, ended_ms: int) -> None:
    await tx.execute("UPDATE incidents SET ended_ms = ? WHERE id = ?", (ended_ms, incident_id))


async def insert_closed_incident(
    tx: Tx, *, cause: str, site: str, started_ms: int, ended_ms: int
) -> IncidentRow:
    row = await tx.fetchone(
        "INSERT INTO incidents (cause, site, started_ms, ended_ms) VALUES (?, ?, ?, ?) RETURNING *",
        (cause, site, started_ms, ended_ms),
    )
    assert row is not None
    return _incident(row)


async def open_incidents(tx: Tx) -> list[IncidentRow]:
    rows = await tx.fetchall("SELECT * FROM incidents WHERE ended_ms = 0 ORDER BY id")
    return [_incident(r) for r in rows]


async def incident(tx: Tx, incident_id: int) -> IncidentRow | None:
    row = await tx.fetchone("SELECT * FROM incidents WHERE id = ?", (incident_id,))
    return None if row is None else _incident(row)


async def incidents(tx: Tx, from_ms: int, to_ms: int) -> list[IncidentRow]:
    """Incidents overlapping [from_ms, to_ms); 0 = unbounded."""
    rows = await tx.fetchall(
        "SELECT * FROM incidents WHERE (? = 0 OR started_ms < ?) "
        "AND (ended_ms = 0 OR ended_ms > ?) ORDER BY started_ms, id",
        (to_ms, to_ms, from_ms),
    )
    return [_incident(r) for r in rows]


async def sites_all_offline(tx: Tx) -> list[str]:
    """Sites that have cabinets, none of them online."""
    rows = await tx.fetchall(
        "SELECT site FROM devices WHERE kind = 'cabinet' GROUP BY site "
        "HAVING SUM(CASE WHEN online = 1 THEN 1 ELSE 0 END) = 0 ORDER BY site"
    )
    return [str(r["site"]) for r in rows]
