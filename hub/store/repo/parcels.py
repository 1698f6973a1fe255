"""Parcels, their transitions, recipient contacts (full phone: only here) and pickup-code hashes."""

from __future__ import annotations

from hub.models import Dims, ParcelRecord, ParcelState, Transition, Zone
from hub.store import Row, Tx
from hub.store.repo import journal

_IN_CHUNK = 500  # ids per IN (...) list: under SQLite's bound-variable limit


def _parcel(row: Row, history: tuple[Transition, ...] = ()) -> ParcelRecord:
    return ParcelRecord(
        parcel_id=row["id"],
        state=ParcelState(row["state"]),
        site=row["site"],
        cabinet_id=row["device"] or "",
        compartment_id=row["compartment"] or "",
        dims=Dims(row["width_mm"], row["height_mm"], row["depth_mm"]),
        weight_g=row["weight_g"],
        zone=Zone(row["zone"]),
        phone_masked=row["phone_masked"],
        electronic_waybill=bool(row["electronic_waybill"]),
        reusable_container=bool(row["reusable_container"]),
        pickup_deadline_ms=row["pickup_deadline_ms"],
        history=history,
        carrier_id=row["carrier"],
    )


async def existing_ids(tx: Tx, parcel_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(parcel_ids), _IN_CHUNK):
        chunk = parcel_ids[start : start + _IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = await tx.fetchall(f"SELECT id FROM parcels WHERE id IN ({marks})", chunk)  # noqa: S608
        found.update(r["id"] for r in rows)
    return found


async def insert_parcel(
    tx: Tx, parcel: ParcelRecord, *, phone: str, reservation_expires_ms: int, now_ms: int
) -> None:
    """Insert a parcel and, in its own table, the recipient's full phone number."""
    await tx.execute(
        "INSERT INTO parcels (id, state, site, device, compartment, width_mm, height_mm, depth_mm, "
        "weight_g, zone, phone_masked, electronic_waybill, reusable_container, "
        "reservation_expires_ms, pickup_deadline_ms, created_ms, updated_ms, carrier) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            parcel.parcel_id,
            str(parcel.state),
            parcel.site,
            parcel.cabinet_id or None,
            parcel.compartment_id or None,
            parcel.dims.width_mm,
            parcel.dims.height_mm,
            parcel.dims.depth_mm,
            parcel.weight_g,
            str(parcel.zone),
            parcel.phone_masked,
            int(parcel.electronic_waybill),
            int(parcel.reusable_container),
            reservation_expires_ms,
            parcel.pickup_deadline_ms,
            now_ms,
            now_ms,
            parcel.carrier_id,
        ),
    )
    await tx.execute(
        "INSERT INTO recipient_contacts (parcel_id, phone) VALUES (?, ?)", (parcel.parcel_id, phone)
    )


async def add_transition(tx: Tx, parcel_id: str, t: Transition, *, detail: str = "") -> None:
    """Record a transition in the parcel's history and in the live event journal."""
    await tx.execute(
        "INSERT INTO parcel_transitions (parcel_id, state, ts_ms, actor, location, detail, "
        "courier) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (parcel_id, str(t.state), t.ts_ms, t.actor, t.location, detail, t.courier),
    )
    await journal.parcel_changed(tx, parcel_id, str(t.state), t.ts_ms, t.actor, t.location)


async def set_state(
    tx: Tx,
    parcel_id: str,
    state: ParcelState,
    now_ms: int,
    *,
    pickup_deadline_ms: int | None = None,
) -> None:
    await tx.execute(
        "UPDATE parcels SET state = ?, updated_ms = ?, "
        "pickup_deadline_ms = COALESCE(?, pickup_deadline_ms) WHERE id = ?",
        (str(state), now_ms, pickup_deadline_ms, parcel_id),
    )


async def get_parcel(tx: Tx, parcel_id: str, *, history: bool = True) -> ParcelRecord | None:
    row = await tx.fetchone("SELECT * FROM parcels WHERE id = ?", (parcel_id,))
    if row is None:
        return None
    hist: tuple[Transition, ...] = ()
    if history:
        rows = await tx.fetchall(
            "SELECT state, ts_ms, actor, location, courier FROM parcel_transitions "
            "WHERE parcel_id = ? "
            "ORDER BY id",
            (parcel_id,),
        )
        hist = tuple(
            Transition(ParcelState(r["state"]), r["ts_ms"], r["actor"], r["location"], r["courier"])
            for r in rows
        )
    return _parcel(row, hist)


async def list_parcels(
    tx: Tx,
    *,
    site: str,
    state: ParcelState | None,
    after_seq: int,
    limit: int,
    carrier: str = "",
) -> tuple[list[ParcelRecord], int | None]:
    """One page in insertion order (one carrier's when ``carrier`` is set); returns the page and
    the cursor of the next one (or None)."""
    clauses, params = ["seq > ?"], [after_seq]
    if carrier:
        clauses.append("carrier = ?")
        params.append(carrier)  # type: ignore[arg-type]
    if site:
        clauses.append("site = ?")
        params.append(site)  # type: ignore[arg-type]
    if state is not None:
        clauses.append("state = ?")
        params.append(str(state))  # type: ignore[arg-type]
    rows = await tx.fetchall(
        f"SELECT * FROM parcels WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT ?",  # noqa: S608
        [*params, limit + 1],
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return [_parcel(r) for r in rows], (rows[-1]["seq"] if more and rows else None)


async def recipient_phone(tx: Tx, parcel_id: str) -> str | None:
    """The full phone number: only the notifier path may call this."""
    row = await tx.fetchone(
        "SELECT phone FROM recipient_contacts WHERE parcel_id = ?", (parcel_id,)
    )
    return None if row is None else str(row["phone"])


async def store_code_hash(
    tx: Tx, parcel_id: str, code_hash: str, *, issued_ms: int, deadline_ms: int
) -> None:
    await tx.execute(
        "INSERT INTO pickup_codes (parcel_id, code_hash, issued_ms, deadline_ms) "
        "VALUES (?, ?, ?, ?) "
        "ON CONFLICT(parcel_id) DO UPDATE SET code_hash = excluded.code_hash, "
        "issued_ms = excluded.issued_ms, deadline_ms = excluded.deadline_ms",
        (parcel_id, code_hash, issued_ms, deadline_ms),
    )


async def delete_code_hash(tx: Tx, parcel_id: str) -> None:
    await tx.execute("DELETE FROM pickup_codes WHERE parcel_id = ?", (parcel_id,))


async def clear_reservation(tx: Tx, parcel_id: str, now_ms: int) -> None:
    """Forget the parcel's compartment (the reservation ended without a deposit)."""
    await tx.execute(
        "UPDATE parcels SET device = NULL, compartment = NULL, reservation_expires_ms = 0, "
        "updated_ms = ? WHERE id = ?",
        (now_ms, parcel_id),
    )


async def set_reservation(
    tx: Tx, parcel_id: str, cabinet: str, compartment: str, expires_ms: int, now_ms: int
) -> None:
    await tx.execute(
        "UPDATE parcels SET device = ?, compartment = ?, reservation_expires_ms = ?, "
        "updated_ms = ? WHERE id = ?",
        (cabinet, compartment, expires_ms, now_ms, parcel_id),
    )


async def due_reminders(tx: Tx, before_deadline_ms: int, limit: int) -> list[ParcelRecord]:
    """Deposited parcels whose deadline is before ``before_deadline_ms`` and not yet reminded."""
    rows = await tx.fetchall(
        "SELECT * FROM parcels WHERE state = 'deposited' AND reminded = 0 "
        "AND pickup_deadline_ms > 0 AND pickup_deadline_ms <= ? ORDER BY pickup_deadline_ms "
        "LIMIT ?",
        (before_deadline_ms, limit),
    )
    return [_parcel(r) for r in rows]


async def mark_reminded(tx: Tx, parcel_id: str) -> None:
    await tx.execute("UPDATE parcels SET reminded = 1 WHERE id = ?", (parcel_id,))


async def due_expiries(tx: Tx, now_ms: int, limit: int) -> list[ParcelRecord]:
    """Deposited parcels past their pickup deadline."""
    rows = await tx.fetchall(
        "SELECT * FROM parcels WHERE state = 'deposited' AND pickup_deadline_ms > 0 "
        "AND pickup_deadline_ms <= ? ORDER BY pickup_deadline_ms LIMIT ?",
        (now_ms, limit),
    )
    return [_parcel(r) for r in rows]


async def due_holds(tx: Tx, now_ms: int, limit: int) -> list[ParcelRecord]:
    """Parcels holding a reservation whose hold has run out (not yet deposited)."""
    rows = await tx.fetchall(
        "SELECT * FROM parcels WHERE state IN ('announced', 'sorted', 'loaded', 'reserved') "
        "AND device IS NOT NULL AND reservation_expires_ms > 0 AND reservation_expires_ms <= ? "
        "ORDER BY reservation_expires_ms LIMIT ?",
        (now_ms, limit),
    )
    return [_parcel(r) for r in rows]


async def reservations_of(tx: Tx, device_id: str) -> list[tuple[str, str, int]]:
    """Live reservations on a cabinet: (parcel id, compartment id, expires_ms)."""
    rows = await tx.fetchall(
        "SELECT id, compartment, reservation_expires_ms FROM parcels WHERE device = ? "
        "AND state IN ('announced', 'sorted', 'loaded', 'reserved') ORDER BY id",
        (device_id,),
    )
    return [(r["id"], r["compartment"], r["reservation_expires_ms"]) for r in rows]


async def carriers_on(tx: Tx, device_id: str) -> dict[str, str]:
    """Parcel id -> carrier of every parcel placed or reserved in a cabinet."""
    rows = await tx.fetchall(
        "SELECT id, carrier FROM parcels WHERE device = ? "
        "AND state IN ('announced', 'sorted', 'loaded', 'reserved', 'deposited', 'expired')",
        (device_id,),
    )
    return {str(r["id"]): str(r["carrier"]) for r in rows}


async def codes_of(tx: Tx, device_id: str) -> list[tuple[str, str, str, int]]:
    """Code hashes of parcels deposited in a cabinet: (parcel, compartment, hash, deadline)."""
    rows = await tx.fetchall(
        "SELECT p.id, p.compartment, c.code_hash, c.deadline_ms FROM parcels p "
        "JOIN pickup_codes c ON c.parcel_id = p.id WHERE p.device = ? AND p.state = 'deposited' "
        "ORDER BY p.id",
        (device_id,),
    )
    return [(r["id"], r["compartment"], r["code_hash"], r["deadline_ms"]) for r in rows]


PARCEL_COLUMNS = (
    "id", "state", "site", "device", "compartment", "width_mm", "height_mm", "depth_mm",
    "weight_g", "zone", "phone_masked", "electronic_waybill", "reusable_container",
    "reservation_expires_ms", "pickup_deadline_ms", "created_ms", "updated_ms", "carrier",
    "locker_consent",
)  # fmt: skip


async def insert_parcel_rows(
    tx: Tx, rows: list[tuple[object, ...]], contacts: list[tuple[str, str]]
) -> None:
    """Bulk :func:`insert_parcel`: rows in :data:`PARCEL_COLUMNS` order and, in their own
    table, the recipients' full phone numbers: (parcel id, phone) each."""
    await tx.insert_many("parcels", PARCEL_COLUMNS, rows)
    await tx.insert_many("recipient_contacts", ("parcel_id", "phone"), contacts)


async def add_transition_rows(tx: Tx, rows: list[tuple[str, str, str, int, str, str]]) -> None:
    """Bulk :func:`add_transition` for parcels whose site the caller knows: (parcel id, site,
    state, ts_ms, actor, location) each, in order (history and journal keep that order)."""
    if not rows:
        return
    await tx.insert_many(
        "parcel_transitions",
        ("parcel_id", "state", "ts_ms", "actor", "location"),
        [(pid, state, ts, actor, location) for pid, _, state, ts, actor, location in rows],
    )
    await journal.parcels_changed(tx, rows)


async def reservation_expires_ms(tx: Tx, parcel_id: str) -> int:
    """When ``parcel_id``'s compartment reservation runs out (0: none, or no such parcel)."""
    row = await tx.fetchone("SELECT reservation_expires_ms FROM parcels WHERE id = ?", (parcel_id,))
    return int(row["reservation_expires_ms"] or 0) if row else 0


async def reserved_at(tx: Tx, parcel_id: str) -> tuple[str | None, str | None] | None:
    """(device, compartment) reserved for ``parcel_id`` (either may be None), None when there is
    no such parcel."""
    row = await tx.fetchone("SELECT device, compartment FROM parcels WHERE id = ?", (parcel_id,))
    return None if row is None else (row["device"], row["compartment"])


async def parcels_by_ids(tx: Tx, parcel_ids: list[str]) -> dict[str, ParcelRecord]:
    """The known parcels among ``parcel_ids`` (without history), by id."""
    found: dict[str, ParcelRecord] = {}
    for start in range(0, len(parcel_ids), _IN_CHUNK):
        chunk = parcel_ids[start : start + _IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = await tx.fetchall(f"SELECT * FROM parcels WHERE id IN ({marks})", chunk)  # noqa: S608
        found.update((r["id"], _parcel(r)) for r in rows)
    return found


async def rebook(
    tx: Tx,
    reservations: list[tuple[str, str, str, int, int, str]],
    states: list[tuple[str, str, int]],
) -> None:
    """Known parcels reserved again, in bulk: (parcel id, cabinet, compartment,
    reservation_expires_ms, updated_ms, locker consent) each, then the new states of those
    that change state: (parcel id, state, updated_ms)."""
    await tx.update_many(
        "parcels",
        ("id",),
        ("device", "compartment", "reservation_expires_ms", "updated_ms", "locker_consent"),
        reservations,
    )
    await tx.update_many("parcels", ("id",), ("state", "updated_ms"), states)
