"""Carriers (tenants) and their per-cabinet compartment quotas."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hub.store import Tx


@dataclass(frozen=True, slots=True)
class CarrierRow:
    carrier_id: str
    name: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class QuotaRow:
    carrier_id: str
    cabinet_id: str
    max_compartments: int
    reserved: tuple[str, ...]


async def insert_carrier(tx: Tx, carrier_id: str, name: str, now_ms: int, actor: str) -> bool:
    """False when the id exists."""
    row = await tx.fetchone(
        "INSERT INTO carriers (id, name, created_ms, actor) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (id) DO NOTHING RETURNING id",
        (carrier_id, name, now_ms, actor),
    )
    return row is not None


async def list_carriers(tx: Tx) -> list[CarrierRow]:
    rows = await tx.fetchall("SELECT id, name, created_ms FROM carriers ORDER BY id")
    return [CarrierRow(r["id"], r["name"], r["created_ms"]) for r in rows]


async def carrier_exists(tx: Tx, carrier_id: str) -> bool:
    return await tx.fetchone("SELECT 1 FROM carriers WHERE id = ?", (carrier_id,)) is not None


async def unknown_carriers(tx: Tx, carrier_ids: Iterable[str]) -> list[str]:
    """The ids among ``carrier_ids`` that are not registered, sorted."""
    wanted = sorted(set(carrier_ids))
    if not wanted:
        return []
    marks = ",".join("?" * len(wanted))
    rows = await tx.fetchall(
        f"SELECT id FROM carriers WHERE id IN ({marks})",  # noqa: S608 - only placeholders
        wanted,
    )
    return sorted(set(wanted) - {r["id"] for r in rows})


async def parcel_carrier(tx: Tx, parcel_id: str) -> str | None:
    """The carrier of a parcel ("" = the city operator's), or None when there is no such parcel."""
    row = await tx.fetchone("SELECT carrier FROM parcels WHERE id = ?", (parcel_id,))
    return None if row is None else str(row["carrier"])


async def compartment_carrier(tx: Tx, cabinet_id: str, compartment_id: str) -> str | None:
    """The carrier of the parcel a compartment holds or is reserved for (None: no parcel)."""
    row = await tx.fetchone(
        "SELECT p.carrier FROM compartments c JOIN parcels p ON p.id = c.parcel_id "
        "WHERE c.device = ? AND c.id = ?",
        (cabinet_id, compartment_id),
    )
    return None if row is None else str(row["carrier"])


async def set_quota(
    tx: Tx, carrier_id: str, cabinet_id: str, max_compartments: int, reserved: Iterable[str]
) -> None:
    """Replace a carrier's quota on one cabinet (its cap and its reserved compartments).

    A compartment reserved for another carrier keeps its owner: the caller checks first.
    """
    await tx.execute(
        "INSERT INTO carrier_quotas (carrier, cabinet, max_compartments) VALUES (?, ?, ?) "
        "ON CONFLICT (carrier, cabinet) DO UPDATE SET max_compartments = excluded.max_compartments",
        (carrier_id, cabinet_id, max_compartments),
    )
    await tx.execute(
        "DELETE FROM carrier_reserved WHERE cabinet = ? AND carrier = ?", (cabinet_id, carrier_id)
    )
    for compartment in reserved:
        await tx.execute(
            "INSERT INTO carrier_reserved (cabinet, compartment, carrier) VALUES (?, ?, ?)",
            (cabinet_id, compartment, carrier_id),
        )


async def reserved_owner(tx: Tx, cabinet_id: str, compartment_id: str) -> str | None:
    row = await tx.fetchone(
        "SELECT carrier FROM carrier_reserved WHERE cabinet = ? AND compartment = ?",
        (cabinet_id, compartment_id),
    )
    return None if row is None else str(row["carrier"])


async def list_quotas(tx: Tx, *, carrier_id: str = "", cabinet_id: str = "") -> list[QuotaRow]:
    rows = await tx.fetchall(
        "SELECT carrier, cabinet, max_compartments FROM carrier_quotas "
        "WHERE (? = '' OR carrier = ?) AND (? = '' OR cabinet = ?) ORDER BY cabinet, carrier",
        (carrier_id, carrier_id, cabinet_id, cabinet_id),
    )
    reserved = await tx.fetchall(
        "SELECT cabinet, compartment, carrier FROM carrier_reserved ORDER BY compartment"
    )
    held: dict[tuple[str, str], list[str]] = {}
    for r in reserved:
        held.setdefault((r["carrier"], r["cabinet"]), []).append(r["compartment"])
    return [
        QuotaRow(
            r["carrier"],
            r["cabinet"],
            r["max_compartments"],
            tuple(held.get((r["carrier"], r["cabinet"]), ())),
        )
        for r in rows
    ]


async def quota_rules(
    tx: Tx, cabinets: Iterable[str]
) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], str], dict[tuple[str, str], int]]:
    """What the allocator needs for ``cabinets``: caps by (carrier, cabinet), reserved
    compartments by (cabinet, compartment) -> carrier, and compartments each carrier already
    occupies by (carrier, cabinet)."""
    wanted = sorted(set(cabinets))
    if not wanted:
        return {}, {}, {}
    marks = ",".join("?" * len(wanted))
    caps = {
        (r["carrier"], r["cabinet"]): int(r["max_compartments"])
        for r in await tx.fetchall(
            f"SELECT carrier, cabinet, max_compartments FROM carrier_quotas "  # noqa: S608
            f"WHERE cabinet IN ({marks}) AND max_compartments > 0",
            wanted,
        )
    }
    reserved = {
        (r["cabinet"], r["compartment"]): str(r["carrier"])
        for r in await tx.fetchall(
            f"SELECT cabinet, compartment, carrier FROM carrier_reserved "  # noqa: S608
            f"WHERE cabinet IN ({marks})",
            wanted,
        )
    }
    used: dict[tuple[str, str], int] = {}
    if caps:
        for r in await tx.fetchall(
            "SELECT p.carrier, c.device, COUNT(*) AS n FROM compartments c "  # noqa: S608
            f"JOIN parcels p ON p.id = c.parcel_id WHERE c.device IN ({marks}) "
            "GROUP BY p.carrier, c.device",
            wanted,
        ):
            used[(str(r["carrier"]), str(r["device"]))] = int(r["n"])
    return caps, reserved, used
