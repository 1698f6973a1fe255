"""Sort plans per line, the versions lines applied, sort exceptions and screening results."""

from __future__ import annotations

import json
from dataclasses import dataclass

from hub.store import Row, Tx


@dataclass(frozen=True, slots=True)
class PlanRow:
    """One version of a line's sort plan."""

    line: str
    version: int
    rules: tuple[tuple[str, str], ...]
    exception_chute: str
    hold_chute: str
    created_ms: int
    actor: str


@dataclass(frozen=True, slots=True)
class ScreeningRow:
    parcel_id: str
    site: str
    station: str
    status: str  # clear, held, released
    reason: str
    screened_ms: int
    released_by: str
    release_reason: str


async def add_plan(
    tx: Tx,
    line: str,
    site: str,
    rules: tuple[tuple[str, str], ...],
    exception_chute: str,
    hold_chute: str,
    *,
    now_ms: int,
    actor: str,
) -> int:
    """Store the next version of ``line``'s plan; returns the version."""
    await tx.execute(
        "INSERT INTO sort_lines (line, site, version) VALUES (?, ?, 1) "
        "ON CONFLICT(line) DO UPDATE SET version = sort_lines.version + 1",
        (line, site),
    )
    row = await tx.fetchone("SELECT version FROM sort_lines WHERE line = ?", (line,))
    assert row is not None
    version = int(row["version"])
    await tx.execute(
        "INSERT INTO sort_plans (line, version, rules, exception_chute, hold_chute, created_ms, "
        "actor) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (line, version, json.dumps(rules), exception_chute, hold_chute, now_ms, actor),
    )
    return version


def _plan(row: Row) -> PlanRow:
    return PlanRow(
        line=row["line"],
        version=int(row["version"]),
        rules=tuple((d, c) for d, c in json.loads(row["rules"])),
        exception_chute=row["exception_chute"],
        hold_chute=row["hold_chute"],
        created_ms=int(row["created_ms"]),
        actor=row["actor"],
    )


async def plan(tx: Tx, line: str, version: int | None = None) -> PlanRow | None:
    """A version of ``line``'s plan (default: the newest)."""
    if version is None:
        r = await tx.fetchone(
            "SELECT p.* FROM sort_plans p JOIN sort_lines l ON l.line = p.line "
            "AND l.version = p.version WHERE p.line = ?",
            (line,),
        )
    else:
        r = await tx.fetchone(
            "SELECT * FROM sort_plans WHERE line = ? AND version = ?", (line, version)
        )
    return None if r is None else _plan(r)


async def line_site(tx: Tx, line: str) -> str | None:
    """The site of a sorting line that has had a plan; None for any other device."""
    row = await tx.fetchone("SELECT site FROM sort_lines WHERE line = ?", (line,))
    return None if row is None else str(row["site"])


async def applied_version(tx: Tx, line: str) -> int:
    r = await tx.fetchone("SELECT applied_version FROM sort_lines WHERE line = ?", (line,))
    return 0 if r is None else int(r["applied_version"])


async def set_applied(tx: Tx, line: str, version: int, now_ms: int) -> None:
    await tx.execute(
        "UPDATE sort_lines SET applied_version = ?, applied_ms = ? WHERE line = ?",
        (version, now_ms, line),
    )


async def lines_at(tx: Tx, site: str) -> list[str]:
    """Provisioned sorting lines at ``site``."""
    rows = await tx.fetchall(
        "SELECT id FROM devices WHERE site = ? AND kind = 'sorting_line' AND provisioned = 1 "
        "ORDER BY id",
        (site,),
    )
    return [r["id"] for r in rows]


async def add_exception(
    tx: Tx,
    *,
    line: str,
    site: str,
    parcel_id: str,
    reason: str,
    plan_version: int,
    chute: str,
    expected_chute: str,
    now_ms: int,
) -> None:
    await tx.execute(
        "INSERT INTO sort_exceptions (line, site, parcel_id, reason, plan_version, chute, "
        "expected_chute, ts_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (line, site, parcel_id, reason, plan_version, chute, expected_chute, now_ms),
    )


# -- screening ---------------------------------------------------------------------------------


def _screening(row: Row) -> ScreeningRow:
    return ScreeningRow(
        parcel_id=row["parcel_id"],
        site=row["site"],
        station=row["station"],
        status=row["status"],
        reason=row["reason"],
        screened_ms=int(row["screened_ms"]),
        released_by=row["released_by"],
        release_reason=row["release_reason"],
    )


async def screening(tx: Tx, parcel_id: str) -> ScreeningRow | None:
    r = await tx.fetchone("SELECT * FROM screenings WHERE parcel_id = ?", (parcel_id,))
    return None if r is None else _screening(r)


async def is_held(tx: Tx, parcel_id: str) -> bool:
    r = await tx.fetchone(
        "SELECT 1 FROM screenings WHERE parcel_id = ? AND status = 'held'", (parcel_id,)
    )
    return r is not None


async def held_among(tx: Tx, parcel_ids: list[str]) -> set[str]:
    """The parcels of ``parcel_ids`` that are held (at most a few thousand ids)."""
    held: set[str] = set()
    for i in range(0, len(parcel_ids), 500):
        chunk = parcel_ids[i : i + 500]
        rows = await tx.fetchall(
            f"SELECT parcel_id FROM screenings WHERE status = 'held' AND parcel_id IN "  # noqa: S608
            f"({','.join('?' * len(chunk))})",
            tuple(chunk),
        )
        held |= {r["parcel_id"] for r in rows}
    return held


async def held_at(tx: Tx, site: str) -> list[str]:
    """Parcels held at screening at ``site`` (what its lines must send to the hold chute)."""
    rows = await tx.fetchall(
        "SELECT parcel_id FROM screenings WHERE status = 'held' AND site = ? ORDER BY parcel_id",
        (site,),
    )
    return [r["parcel_id"] for r in rows]


async def record_screening(
    tx: Tx, parcel_id: str, site: str, station: str, status: str, reason: str, now_ms: int
) -> None:
    await tx.execute(
        "INSERT INTO screenings (parcel_id, site, station, status, reason, screened_ms) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(parcel_id) DO UPDATE SET site = excluded.site, "
        "station = excluded.station, status = excluded.status, reason = excluded.reason, "
        "screened_ms = excluded.screened_ms, released_by = '', release_reason = '', "
        "released_ms = 0",
        (parcel_id, site, station, status, reason, now_ms),
    )


async def release(tx: Tx, parcel_id: str, actor: str, reason: str, now_ms: int) -> bool:
    """Lift a hold; False when the parcel is not held."""
    changed = await tx.execute(
        "UPDATE screenings SET status = 'released', released_by = ?, release_reason = ?, "
        "released_ms = ? WHERE parcel_id = ? AND status = 'held'",
        (actor, reason, now_ms, parcel_id),
    )
    return changed == 1


async def journal_screening(
    tx: Tx, parcel_id: str, site: str, status: str, actor: str, station: str, now_ms: int
) -> None:
    """A hold or release in the live event stream (WatchEvents)."""
    await tx.execute(
        "INSERT INTO live_events (ts_ms, site, kind, ref, state, actor, device) "
        "VALUES (?, ?, 'screening', ?, ?, ?, ?)",
        (now_ms, site, parcel_id, status, actor, station),
    )


async def holds_in_force(
    tx: Tx, *, overdue_before_ms: int
) -> tuple[dict[str, int], dict[str, int]]:
    """site -> parcels held at screening now, and site -> those of them screened before
    ``overdue_before_ms`` (the metrics' gauges: one read of the rows in the 'held' state,
    through the status index)."""
    rows = await tx.fetchall(
        "SELECT site, COUNT(*) AS n, "
        "SUM(CASE WHEN screened_ms < ? THEN 1 ELSE 0 END) AS overdue "
        "FROM screenings WHERE status = 'held' GROUP BY site",
        (overdue_before_ms,),
    )
    held = {str(r["site"]): int(r["n"]) for r in rows}
    return held, {str(r["site"]): int(r["overdue"] or 0) for r in rows}
