"""Couriers, their conduct records, the bad-conduct list and its audit trail."""

from __future__ import annotations

from dataclasses import dataclass

from hub.store import Tx
from hub.store.connection import Row


@dataclass(frozen=True, slots=True)
class CourierRow:
    courier_id: str
    carrier_id: str
    name: str
    phone_masked: str
    status: str
    code_salt: str
    code_hash: str
    code_iterations: int
    blocked_reason: str


@dataclass(frozen=True, slots=True)
class ConductRow:
    kind: str
    parcel_id: str
    detail: str
    actor: str
    ts_ms: int


@dataclass(frozen=True, slots=True)
class BlockRow:
    courier_id: str
    carrier_id: str
    reason: str
    actor: str
    since_ms: int


_SELECT = (
    "SELECT c.*, COALESCE(b.reason, '') AS blocked FROM couriers c "
    "LEFT JOIN courier_blocklist b ON b.courier = c.id "
)


def _courier(r: Row) -> CourierRow:
    return CourierRow(
        r["id"],
        r["carrier"],
        r["name"],
        r["phone_masked"],
        r["status"],
        r["code_salt"],
        r["code_hash"],
        r["code_iterations"],
        r["blocked"],
    )


async def insert_courier(
    tx: Tx, *, courier_id: str, carrier_id: str, name: str, phone_masked: str, now_ms: int
) -> bool:
    """False when the id exists."""
    row = await tx.fetchone(
        "INSERT INTO couriers (id, carrier, name, phone_masked, status, created_ms, updated_ms) "
        "VALUES (?, ?, ?, ?, 'active', ?, ?) ON CONFLICT (id) DO NOTHING RETURNING id",
        (courier_id, carrier_id, name, phone_masked, now_ms, now_ms),
    )
    return row is not None


async def courier_carrier(tx: Tx, courier_id: str) -> str | None:
    row = await tx.fetchone("SELECT carrier FROM couriers WHERE id = ?", (courier_id,))
    return None if row is None else str(row["carrier"])


async def get_courier(tx: Tx, courier_id: str) -> CourierRow | None:
    row = await tx.fetchone(_SELECT + "WHERE c.id = ?", (courier_id,))
    return None if row is None else _courier(row)


async def list_couriers(tx: Tx, carrier_id: str = "") -> list[CourierRow]:
    rows = await tx.fetchall(
        _SELECT + "WHERE (? = '' OR c.carrier = ?) ORDER BY c.id", (carrier_id, carrier_id)
    )
    return [_courier(r) for r in rows]


async def set_status(tx: Tx, courier_id: str, status: str, now_ms: int) -> None:
    await tx.execute(
        "UPDATE couriers SET status = ?, updated_ms = ? WHERE id = ?", (status, now_ms, courier_id)
    )


async def set_code(
    tx: Tx, courier_id: str, salt: str, digest: str, iterations: int, now_ms: int
) -> None:
    await tx.execute(
        "UPDATE couriers SET code_salt = ?, code_hash = ?, code_iterations = ?, updated_ms = ? "
        "WHERE id = ?",
        (salt, digest, iterations, now_ms, courier_id),
    )


async def add_conduct(
    tx: Tx, courier_id: str, kind: str, *, parcel_id: str, detail: str, actor: str, ts_ms: int
) -> None:
    await tx.execute(
        "INSERT INTO courier_conduct (courier, kind, parcel_id, detail, actor, ts_ms) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (courier_id, kind, parcel_id, detail, actor, ts_ms),
    )


async def conduct_of(tx: Tx, courier_id: str, limit: int = 1000) -> list[ConductRow]:
    rows = await tx.fetchall(
        "SELECT kind, parcel_id, detail, actor, ts_ms FROM courier_conduct WHERE courier = ? "
        "ORDER BY id LIMIT ?",
        (courier_id, limit),
    )
    return [
        ConductRow(r["kind"], r["parcel_id"], r["detail"], r["actor"], r["ts_ms"]) for r in rows
    ]


async def conduct_counts(tx: Tx, courier_id: str) -> dict[str, int]:
    rows = await tx.fetchall(
        "SELECT kind, COUNT(*) AS n FROM courier_conduct WHERE courier = ? GROUP BY kind",
        (courier_id,),
    )
    return {str(r["kind"]): int(r["n"]) for r in rows}


async def handled_counts(tx: Tx, courier_id: str) -> tuple[int, int]:
    """(deposits, withdrawals) the parcel history names this courier for."""
    rows = await tx.fetchall(
        "SELECT state, COUNT(*) AS n FROM parcel_transitions WHERE courier = ? GROUP BY state",
        (courier_id,),
    )
    counts = {str(r["state"]): int(r["n"]) for r in rows}
    return counts.get("deposited", 0), counts.get("withdrawn", 0)


async def block(tx: Tx, courier_id: str, reason: str, actor: str, now_ms: int) -> None:
    await tx.execute(
        "INSERT INTO courier_blocklist (courier, reason, actor, since_ms) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (courier) DO UPDATE SET reason = excluded.reason, actor = excluded.actor",
        (courier_id, reason, actor, now_ms),
    )


async def unblock(tx: Tx, courier_id: str) -> None:
    await tx.execute("DELETE FROM courier_blocklist WHERE courier = ?", (courier_id,))


async def audit(tx: Tx, courier_id: str, action: str, reason: str, actor: str, ts: int) -> None:
    await tx.execute(
        "INSERT INTO courier_audit (courier, action, reason, actor, ts_ms) VALUES (?, ?, ?, ?, ?)",
        (courier_id, action, reason, actor, ts),
    )


async def blocklist(tx: Tx) -> list[BlockRow]:
    rows = await tx.fetchall(
        "SELECT b.courier, COALESCE(c.carrier, '') AS carrier, b.reason, b.actor, b.since_ms "
        "FROM courier_blocklist b LEFT JOIN couriers c ON c.id = b.courier ORDER BY b.courier"
    )
    return [
        BlockRow(r["courier"], r["carrier"], r["reason"], r["actor"], r["since_ms"]) for r in rows
    ]


async def cabinet_couriers(tx: Tx) -> list[CourierRow]:
    """Couriers a cabinet accepts: active and not on the bad-conduct list."""
    rows = await tx.fetchall(
        _SELECT + "WHERE c.status = 'active' AND b.courier IS NULL ORDER BY c.id"
    )
    return [_courier(r) for r in rows]


async def handled_in_period(tx: Tx, from_ms: int, to_ms: int) -> dict[str, tuple[int, int]]:
    """courier -> (deposits, withdrawals) the parcel history names them for in [from, to)."""
    rows = await tx.fetchall(
        "SELECT courier, state, COUNT(*) AS n FROM parcel_transitions "
        "WHERE courier IS NOT NULL AND courier != '' AND ts_ms >= ? AND ts_ms < ? "
        "AND state IN ('deposited', 'withdrawn') GROUP BY courier, state",
        (from_ms, to_ms),
    )
    out: dict[str, tuple[int, int]] = {}
    for r in rows:
        dep, wd = out.get(str(r["courier"]), (0, 0))
        if r["state"] == "deposited":
            dep += int(r["n"])
        else:
            wd += int(r["n"])
        out[str(r["courier"])] = (dep, wd)
    return out


async def conduct_in_period(tx: Tx, from_ms: int, to_ms: int) -> dict[str, dict[str, int]]:
    """courier -> {kind: entries} for the conduct entries dated in [from, to)."""
    rows = await tx.fetchall(
        "SELECT courier, kind, COUNT(*) AS n FROM courier_conduct "
        "WHERE ts_ms >= ? AND ts_ms < ? GROUP BY courier, kind",
        (from_ms, to_ms),
    )
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        out.setdefault(str(r["courier"]), {})[str(r["kind"])] = int(r["n"])
    return out


async def depositor(tx: Tx, parcel_id: str) -> str:
    """The courier named on ``parcel_id``'s newest deposit ("" when none is named)."""
    row = await tx.fetchone(
        "SELECT courier FROM parcel_transitions WHERE parcel_id = ? AND state = 'deposited' "
        "AND courier != '' ORDER BY id DESC LIMIT 1",
        (parcel_id,),
    )
    return "" if row is None else str(row["courier"])


async def last_deposit_at(tx: Tx, location: str, since_ms: int) -> tuple[str, str] | None:
    """(parcel id, courier) of the newest deposit at ``location`` since ``since_ms`` that names a
    courier, or None."""
    row = await tx.fetchone(
        "SELECT parcel_id, courier FROM parcel_transitions WHERE location = ? "
        "AND state = 'deposited' AND courier != '' AND ts_ms >= ? ORDER BY id DESC LIMIT 1",
        (location, since_ms),
    )
    return None if row is None else (str(row["parcel_id"]), str(row["courier"]))
