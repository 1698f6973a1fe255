"""Registered vehicles and their zone permits."""

from __future__ import annotations

from hub.store import Row, Tx
from hub.vehicles.model import Vehicle, VehicleClass

_COLUMNS = (
    "id, plate, class, capacity_parcels, capacity_volume_l, battery_kwh, consumption_kwh_per_km, "
    "depot, driver_id, safety_trained, insurance_expiry_ms, id_tag, retired, retired_reason, "
    "registered_ms, updated_ms"
)


def _vehicle(row: Row, permits: tuple[str, ...]) -> Vehicle:
    return Vehicle(
        vehicle_id=row["id"],
        plate=row["plate"],
        vehicle_class=VehicleClass(row["class"]),
        capacity_parcels=row["capacity_parcels"],
        capacity_volume_l=row["capacity_volume_l"],
        battery_kwh=row["battery_kwh"],
        consumption_kwh_per_km=row["consumption_kwh_per_km"],
        permit_zones=permits,
        depot_site=row["depot"],
        driver_id=row["driver_id"],
        safety_trained=bool(row["safety_trained"]),
        insurance_expiry_ms=row["insurance_expiry_ms"],
        id_tag=row["id_tag"],
        retired=bool(row["retired"]),
        retired_reason=row["retired_reason"],
        registered_ms=row["registered_ms"],
        updated_ms=row["updated_ms"],
    )


async def _permits(tx: Tx, vehicle_id: str) -> tuple[str, ...]:
    rows = await tx.fetchall(
        "SELECT zone FROM vehicle_permits WHERE vehicle = ? ORDER BY zone", (vehicle_id,)
    )
    return tuple(r["zone"] for r in rows)


async def get(tx: Tx, vehicle_id: str) -> Vehicle | None:
    row = await tx.fetchone(
        f"SELECT {_COLUMNS} FROM vehicles WHERE id = ?",  # noqa: S608 - fixed columns
        (vehicle_id,),
    )
    return None if row is None else _vehicle(row, await _permits(tx, vehicle_id))


async def plate_owner(tx: Tx, plate: str) -> str | None:
    row = await tx.fetchone("SELECT id FROM vehicles WHERE plate = ?", (plate,))
    return None if row is None else str(row["id"])


def _record(v: Vehicle) -> tuple[object, ...]:
    """The columns an insert and an update both write, from ``plate`` to ``retired_reason``."""
    return (
        v.plate,
        str(v.vehicle_class),
        v.capacity_parcels,
        v.capacity_volume_l,
        v.battery_kwh,
        v.consumption_kwh_per_km,
        v.depot_site,
        v.driver_id,
        int(v.safety_trained),
        v.insurance_expiry_ms,
        v.id_tag,
        int(v.retired),
        v.retired_reason,
    )


async def insert(tx: Tx, v: Vehicle) -> None:
    await tx.execute(
        f"INSERT INTO vehicles ({_COLUMNS}) VALUES ({', '.join('?' * 16)})",  # noqa: S608 - fixed
        (v.vehicle_id, *_record(v), v.registered_ms, v.updated_ms),
    )
    await _set_permits(tx, v)


async def update(tx: Tx, v: Vehicle) -> None:
    await tx.execute(
        "UPDATE vehicles SET plate = ?, class = ?, capacity_parcels = ?, capacity_volume_l = ?, "
        "battery_kwh = ?, consumption_kwh_per_km = ?, depot = ?, driver_id = ?, "
        "safety_trained = ?, insurance_expiry_ms = ?, id_tag = ?, retired = ?, "
        "retired_reason = ?, updated_ms = ? WHERE id = ?",
        (*_record(v), v.updated_ms, v.vehicle_id),
    )
    await _set_permits(tx, v)


async def _set_permits(tx: Tx, v: Vehicle) -> None:
    await tx.execute("DELETE FROM vehicle_permits WHERE vehicle = ?", (v.vehicle_id,))
    await tx.executemany(
        "INSERT INTO vehicle_permits (vehicle, zone) VALUES (?, ?)",
        [(v.vehicle_id, z) for z in sorted(set(v.permit_zones))],
    )


async def list_vehicles(
    tx: Tx,
    *,
    vehicle_class: VehicleClass | None = None,
    depot: str = "",
    include_retired: bool = False,
    limit: int = 10_000,
) -> list[Vehicle]:
    where, params = ["1 = 1"], []
    if vehicle_class is not None:
        where.append("class = ?")
        params.append(str(vehicle_class))
    if depot:
        where.append("depot = ?")
        params.append(depot)
    if not include_retired:
        where.append("retired = 0")
    rows = await tx.fetchall(
        f"SELECT {_COLUMNS} FROM vehicles WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",  # noqa: S608 - fixed clauses
        (*params, limit),
    )
    permits: dict[str, list[str]] = {}
    for r in await tx.fetchall("SELECT vehicle, zone FROM vehicle_permits ORDER BY zone"):
        permits.setdefault(r["vehicle"], []).append(r["zone"])
    return [_vehicle(r, tuple(permits.get(r["id"], ()))) for r in rows]
