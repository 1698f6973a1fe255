"""The operator's inventory: provisioned devices and compartments, and what births confirmed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hub.store import Tx


@dataclass(frozen=True, slots=True)
class Slot:
    """One compartment's fixed properties, as provisioned or as a birth reports it."""

    compartment_id: str
    size: str
    width_mm: int
    height_mm: int
    depth_mm: int
    max_weight_g: int
    zone: str


async def provision_device(tx: Tx, device_id: str, site: str, kind: str, now_ms: int) -> str:
    """Insert or mark the device provisioned with ``kind``; returns the site it is registered
    at (which may differ from ``site``: devices are never moved)."""
    await tx.execute(
        "INSERT INTO devices (id, site, kind, registered_ms, provisioned) VALUES (?, ?, ?, ?, 1) "
        "ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, provisioned = 1",
        (device_id, site, kind, now_ms),
    )
    row = await tx.fetchone("SELECT site FROM devices WHERE id = ?", (device_id,))
    assert row is not None
    return str(row["site"])


async def provision_compartments(tx: Tx, device_id: str, slots: Iterable[Slot]) -> None:
    """Make ``slots`` the device's provisioned layout. A compartment whose properties change must
    be confirmed again; one left out is kept (it may hold a parcel) but no longer provisioned."""
    wanted = list(slots)
    await tx.execute("UPDATE compartments SET provisioned = 0 WHERE device = ?", (device_id,))
    await tx.executemany(
        "INSERT INTO compartments (device, id, size, width_mm, height_mm, depth_mm, max_weight_g, "
        "zone, provisioned) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT(device, id) DO UPDATE "
        "SET provisioned = 1, confirmed = CASE WHEN compartments.confirmed = 1 "
        "AND compartments.size = excluded.size "
        "AND compartments.width_mm = excluded.width_mm "
        "AND compartments.height_mm = excluded.height_mm "
        "AND compartments.depth_mm = excluded.depth_mm "
        "AND compartments.max_weight_g = excluded.max_weight_g "
        "AND compartments.zone = excluded.zone THEN 1 ELSE 0 END, "
        "size = excluded.size, width_mm = excluded.width_mm, "
        "height_mm = excluded.height_mm, depth_mm = excluded.depth_mm, "
        "max_weight_g = excluded.max_weight_g, zone = excluded.zone",
        [
            (
                device_id,
                s.compartment_id,
                s.size,
                s.width_mm,
                s.height_mm,
                s.depth_mm,
                s.max_weight_g,
                s.zone,
            )
            for s in wanted
        ],
    )
    await tx.execute(
        "UPDATE compartments SET confirmed = 0 WHERE device = ? AND provisioned = 0", (device_id,)
    )


async def provisioned_slots(tx: Tx, device_id: str) -> dict[str, Slot]:
    rows = await tx.fetchall(
        "SELECT id, size, width_mm, height_mm, depth_mm, max_weight_g, zone FROM compartments "
        "WHERE device = ? AND provisioned = 1",
        (device_id,),
    )
    return {
        r["id"]: Slot(
            r["id"],
            r["size"],
            r["width_mm"],
            r["height_mm"],
            r["depth_mm"],
            r["max_weight_g"],
            r["zone"],
        )
        for r in rows
    }


async def is_provisioned(tx: Tx, device_id: str) -> bool:
    row = await tx.fetchone("SELECT provisioned FROM devices WHERE id = ?", (device_id,))
    return row is not None and bool(row["provisioned"])


async def set_confirmed(tx: Tx, device_id: str, confirmed: Iterable[str]) -> None:
    """Exactly ``confirmed`` (provisioned compartments a birth reported as provisioned) may be
    allocated; every other compartment of the device may not."""
    ids = sorted(set(confirmed))
    await tx.execute("UPDATE compartments SET confirmed = 0 WHERE device = ?", (device_id,))
    await tx.executemany(
        "UPDATE compartments SET confirmed = 1 WHERE device = ? AND id = ? AND provisioned = 1",
        [(device_id, i) for i in ids],
    )
