"""The regulator export's queries: site filings, volumes by site, waybills by carrier."""

from __future__ import annotations

from dataclasses import dataclass

from hub.store import Tx


@dataclass(frozen=True, slots=True)
class Outlet:
    site: str
    name: str
    filing_number: str | None
    site_type: str | None
    public_service: bool | None


async def set_filing(
    tx: Tx, *, site: str, filing_number: str, site_type: str, public_service: bool
) -> None:
    await tx.execute(
        "INSERT INTO site_filings (site, filing_number, site_type, public_service) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (site) DO UPDATE SET "
        "filing_number = excluded.filing_number, site_type = excluded.site_type, "
        "public_service = excluded.public_service",
        (site, filing_number, site_type, int(public_service)),
    )


async def outlets(tx: Tx) -> list[Outlet]:
    rows = await tx.fetchall(
        "SELECT s.id, s.name, f.filing_number, f.site_type, f.public_service FROM sites s "
        "LEFT JOIN site_filings f ON f.site = s.id ORDER BY s.id"
    )
    return [
        Outlet(
            r["id"],
            r["name"],
            r["filing_number"],
            r["site_type"],
            None if r["public_service"] is None else bool(r["public_service"]),
        )
        for r in rows
    ]


async def transitions_by_site(tx: Tx, from_ms: int, to_ms: int) -> dict[tuple[str, str], int]:
    """(site, state) -> parcels that entered the state in [from_ms, to_ms)."""
    rows = await tx.fetchall(
        "SELECT p.site, t.state, COUNT(DISTINCT t.parcel_id) AS n FROM parcel_transitions t "
        "JOIN parcels p ON p.id = t.parcel_id WHERE t.ts_ms >= ? AND t.ts_ms < ? "
        "GROUP BY p.site, t.state",
        (from_ms, to_ms),
    )
    return {(r["site"], r["state"]): int(r["n"]) for r in rows}


async def waybills_by_carrier(tx: Tx, from_ms: int, to_ms: int) -> list[tuple[str, int, int]]:
    """(carrier, parcels announced in the period, of which with an electronic waybill)."""
    rows = await tx.fetchall(
        "SELECT carrier, COUNT(*) AS n, SUM(electronic_waybill) AS e FROM parcels "
        "WHERE created_ms >= ? AND created_ms < ? GROUP BY carrier ORDER BY carrier",
        (from_ms, to_ms),
    )
    return [(r["carrier"], int(r["n"]), int(r["e"] or 0)) for r in rows]


async def consent_counts(tx: Tx, from_ms: int, to_ms: int) -> dict[str, int]:
    rows = await tx.fetchall(
        "SELECT locker_consent, COUNT(*) AS n FROM parcels WHERE created_ms >= ? "
        "AND created_ms < ? GROUP BY locker_consent",
        (from_ms, to_ms),
    )
    return {r["locker_consent"]: int(r["n"]) for r in rows}


async def held_by_site(tx: Tx, from_ms: int, to_ms: int) -> dict[str, int]:
    """site -> parcels under a screening hold at some time in [from, to): held before the end and
    still held, or released at or after the start (a parcel's latest screening only)."""
    rows = await tx.fetchall(
        "SELECT site, COUNT(*) AS n FROM screenings WHERE screened_ms < ? AND "
        "(status = 'held' OR (status = 'released' AND released_ms >= ?)) GROUP BY site",
        (to_ms, from_ms),
    )
    return {str(r["site"]): int(r["n"]) for r in rows}
