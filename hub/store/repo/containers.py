"""Reusable containers: where each one is, what is in it, and the per-site container share."""

from __future__ import annotations

from dataclasses import dataclass

from hub.store import Row, Tx


@dataclass(frozen=True, slots=True)
class ContainerRow:
    container_id: str
    type: str
    state: str  # at_hub, filled, loaded, at_site, empty_at_site
    site: str
    vehicle: str
    home_site: str
    cycles: int
    last_seen_ms: int


def _row(r: Row) -> ContainerRow:
    return ContainerRow(
        container_id=r["id"],
        type=r["type"],
        state=r["state"],
        site=r["site"],
        vehicle=r["vehicle"],
        home_site=r["home_site"],
        cycles=int(r["cycles"]),
        last_seen_ms=int(r["last_seen_ms"]),
    )


async def get(tx: Tx, container_id: str) -> ContainerRow | None:
    r = await tx.fetchone("SELECT * FROM containers WHERE id = ?", (container_id,))
    return None if r is None else _row(r)


async def put(tx: Tx, c: ContainerRow, now_ms: int) -> None:
    """Insert or update a container's row."""
    await tx.execute(
        "INSERT INTO containers (id, type, state, site, vehicle, home_site, cycles, "
        "first_seen_ms, last_seen_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET state = excluded.state, site = excluded.site, "
        "vehicle = excluded.vehicle, cycles = excluded.cycles, "
        "last_seen_ms = excluded.last_seen_ms",
        (
            c.container_id,
            c.type,
            c.state,
            c.site,
            c.vehicle,
            c.home_site,
            c.cycles,
            now_ms,
            now_ms,
        ),
    )


async def contents(tx: Tx, container_id: str) -> list[str]:
    """Parcels in the container now (filled and not emptied)."""
    rows = await tx.fetchall(
        "SELECT parcel_id FROM container_parcels WHERE container = ? AND emptied_ms = 0 "
        "ORDER BY parcel_id",
        (container_id,),
    )
    return [r["parcel_id"] for r in rows]


async def holder(tx: Tx, parcel_id: str) -> str:
    """The container the parcel is in now ('' when none)."""
    r = await tx.fetchone(
        "SELECT container FROM container_parcels WHERE parcel_id = ? AND emptied_ms = 0",
        (parcel_id,),
    )
    return "" if r is None else str(r["container"])


async def ever_contained(tx: Tx, parcel_id: str) -> bool:
    r = await tx.fetchone("SELECT 1 FROM container_parcels WHERE parcel_id = ?", (parcel_id,))
    return r is not None


async def fill(tx: Tx, container_id: str, parcels: list[tuple[str, str]], now_ms: int) -> None:
    """Put ``(parcel id, destination site)`` pairs into the container."""
    await tx.executemany(
        "INSERT INTO container_parcels (container, parcel_id, site, filled_ms) VALUES (?, ?, ?, ?)",
        [(container_id, pid, site, now_ms) for pid, site in parcels],
    )


async def empty(tx: Tx, container_id: str, now_ms: int) -> None:
    await tx.execute(
        "UPDATE container_parcels SET emptied_ms = ? WHERE container = ? AND emptied_ms = 0",
        (now_ms, container_id),
    )


async def count_share(tx: Tx, site: str, *, sorted_: int = 0, contained: int = 0) -> None:
    """Add to a destination site's container-share counters."""
    await tx.execute(
        "INSERT INTO container_share (site, sorted, contained) VALUES (?, ?, ?) "
        "ON CONFLICT(site) DO UPDATE SET sorted = container_share.sorted + excluded.sorted, "
        "contained = container_share.contained + excluded.contained",
        (site, sorted_, contained),
    )


async def share(tx: Tx) -> dict[str, tuple[int, int]]:
    """site -> (parcels sorted for it that travelled in a container, parcels sorted for it)."""
    rows = await tx.fetchall("SELECT site, sorted, contained FROM container_share")
    return {r["site"]: (int(r["contained"]), int(r["sorted"])) for r in rows}


async def by_state(tx: Tx) -> dict[tuple[str, str], int]:
    rows = await tx.fetchall(
        "SELECT state, site, COUNT(*) AS n FROM containers GROUP BY state, site"
    )
    return {(r["state"], r["site"]): int(r["n"]) for r in rows}


async def cycles(tx: Tx) -> int:
    r = await tx.fetchone("SELECT SUM(cycles) AS n FROM containers")
    return int(r["n"] or 0) if r is not None else 0


async def lost(tx: Tx, seen_before_ms: int) -> int:
    """Containers away from the hub not seen since ``seen_before_ms``."""
    r = await tx.fetchone(
        "SELECT COUNT(*) AS n FROM containers WHERE state != 'at_hub' AND last_seen_ms < ?",
        (seen_before_ms,),
    )
    return int(r["n"]) if r is not None else 0


async def empty_containers_by_site(tx: Tx) -> dict[str, list[tuple[str, str]]]:
    """Empty containers waiting at sites, to be picked up on the way back to the hub.

    For the route planner (reverse logistics): site -> [(container id, type)], where type is
    "bag", "box" or "cage". A container is listed from its EMPTIED event until it is LOADED.
    """
    rows = await tx.fetchall(
        "SELECT id, type, site FROM containers WHERE state = 'empty_at_site' ORDER BY site, id"
    )
    out: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        out.setdefault(r["site"], []).append((r["id"], r["type"]))
    return out
