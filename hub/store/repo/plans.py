"""Stored route plans and the parcels a plan delivers or collects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hub.store import Tx


@dataclass(frozen=True, slots=True)
class PlanParcel:
    parcel_id: str
    site: str
    state: str
    volume_l: float


@dataclass(frozen=True, slots=True)
class PlanRow:
    plan_id: str
    hub_site: str
    created_ms: int
    replaces: str
    replaced_by: str
    request: str
    reply: str


async def site_coords(tx: Tx) -> dict[str, tuple[float, float]]:
    """(lat, lon) of every site, by id."""
    rows = await tx.fetchall("SELECT id, lat, lon FROM sites")
    return {r["id"]: (r["lat"], r["lon"]) for r in rows}


async def site_position(tx: Tx, site: str) -> tuple[float, float] | None:
    """(lat, lon) of ``site`` (a plan's depot), None when there is no such site."""
    row = await tx.fetchone("SELECT lat, lon FROM sites WHERE id = ?", (site,))
    return None if row is None else (row["lat"], row["lon"])


async def sorted_parcel_ids(tx: Tx) -> list[str]:
    """The ids of sorted parcels (at most 100 000, in no particular order)."""
    rows = await tx.fetchall("SELECT id FROM parcels WHERE state = 'sorted' LIMIT 100000")
    return [r["id"] for r in rows]


_PARCEL = "SELECT id, site, state, width_mm * height_mm * depth_mm / 1e6 AS litres FROM parcels"


async def parcels_to_deliver(tx: Tx, ids: Sequence[str], *, limit: int) -> list[PlanParcel]:
    """The named parcels (any state: the caller checks), else every sorted one."""
    if ids:
        out = []
        for pid in ids:
            row = await tx.fetchone(f"{_PARCEL} WHERE id = ?", (pid,))
            if row is not None:
                out.append(PlanParcel(row["id"], row["site"], row["state"], row["litres"]))
        return out
    rows = await tx.fetchall(
        f"{_PARCEL} WHERE state = 'sorted' ORDER BY seq LIMIT ?",
        (limit,),
    )
    return [PlanParcel(r["id"], r["site"], r["state"], r["litres"]) for r in rows]


async def parcels_to_collect(tx: Tx, *, limit: int) -> list[PlanParcel]:
    """Expired parcels still in a compartment: a courier takes them back (reverse logistics)."""
    rows = await tx.fetchall(
        f"{_PARCEL} WHERE state = 'expired' AND device IS NOT NULL ORDER BY seq LIMIT ?",
        (limit,),
    )
    return [PlanParcel(r["id"], r["site"], r["state"], r["litres"]) for r in rows]


async def insert_plan(
    tx: Tx,
    *,
    plan_id: str,
    hub_site: str,
    created_ms: int,
    replaces: str,
    actor: str,
    reason: str,
    request: str,
    reply: str,
    vehicles: Sequence[str],
) -> None:
    await tx.execute(
        "INSERT INTO route_plans (plan_id, hub_site, created_ms, replaces, actor, reason, "
        "request, reply) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (plan_id, hub_site, created_ms, replaces, actor, reason, request, reply),
    )
    await tx.executemany(
        "INSERT INTO route_plan_vehicles (plan, vehicle) VALUES (?, ?) ON CONFLICT DO NOTHING",
        [(plan_id, v) for v in vehicles],
    )


async def get_plan(tx: Tx, plan_id: str) -> PlanRow | None:
    """The plan ``plan_id``, or the newest when it is empty."""
    cols = "plan_id, hub_site, created_ms, replaces, replaced_by, request, reply"
    if plan_id:
        row = await tx.fetchone(
            f"SELECT {cols} FROM route_plans WHERE plan_id = ?",  # noqa: S608 - fixed
            (plan_id,),
        )
    else:
        row = await tx.fetchone(
            f"SELECT {cols} FROM route_plans ORDER BY id DESC LIMIT 1"  # noqa: S608 - fixed
        )
    if row is None:
        return None
    return PlanRow(
        row["plan_id"],
        row["hub_site"],
        row["created_ms"],
        row["replaces"],
        row["replaced_by"],
        row["request"],
        row["reply"],
    )


async def mark_replaced(tx: Tx, plan_id: str, by: str) -> None:
    await tx.execute("UPDATE route_plans SET replaced_by = ? WHERE plan_id = ?", (by, plan_id))
