"""Sites, devices and compartments."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hub.metrics.catalogue import Snapshot
from hub.metrics.telemetry import DeviceInfo
from hub.models import CompartmentRecord, DeviceRecord, Dims, Zone
from hub.parcels.allocation import FreeSlot
from hub.settings import SiteSettings
from hub.store import Row, Tx
from hub.store.repo import ROWS_PER_STATEMENT
from lockerhub.codec import CONTENT_TYPE_PROTOBUF
from lockerhub.states import CompartmentState


async def upsert_sites(tx: Tx, sites: Iterable[SiteSettings]) -> None:
    await tx.executemany(
        "INSERT INTO sites (id, name, lat, lon) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE "
        "SET name = excluded.name, lat = excluded.lat, lon = excluded.lon",
        [(s.id, s.name or s.id, s.lat, s.lon) for s in sites],
    )


async def site_exists(tx: Tx, site: str) -> bool:
    return await tx.fetchone("SELECT 1 FROM sites WHERE id = ?", (site,)) is not None


def _device(row: Row, compartments: Sequence[CompartmentRecord] = ()) -> DeviceRecord:
    return DeviceRecord(
        device_id=row["id"],
        site=row["site"],
        kind=row["kind"],
        online=bool(row["online"]),
        boot_count=row["boot_count"],
        last_seen_ms=row["last_seen_ms"],
        energy_wh=row["energy_wh"],
        power_w=row["power_w"],
        compartments=tuple(compartments),
        provisioned=bool(row["provisioned"]),
    )


def _compartment(row: Row) -> CompartmentRecord:
    return CompartmentRecord(
        cabinet_id=row["device"],
        compartment_id=row["id"],
        size=row["size"],
        inner=Dims(row["width_mm"], row["height_mm"], row["depth_mm"]),
        max_weight_g=row["max_weight_g"],
        zone=Zone(row["zone"]),
        state=CompartmentState(row["state"]),
        door_open=bool(row["door_open"]),
        item_present=bool(row["item_present"]),
        parcel_id=row["parcel_id"] or "",
    )


async def get_device(tx: Tx, device_id: str) -> DeviceRecord | None:
    row = await tx.fetchone("SELECT * FROM devices WHERE id = ?", (device_id,))
    return None if row is None else _device(row)


async def get_cabinet(tx: Tx, device_id: str) -> DeviceRecord | None:
    """A device with its compartments."""
    row = await tx.fetchone("SELECT * FROM devices WHERE id = ?", (device_id,))
    if row is None:
        return None
    comps = await tx.fetchall(
        "SELECT * FROM compartments WHERE device = ? ORDER BY id", (device_id,)
    )
    return _device(row, [_compartment(c) for c in comps])


async def list_devices(tx: Tx, site: str = "") -> list[DeviceRecord]:
    if site:
        rows = await tx.fetchall("SELECT * FROM devices WHERE site = ? ORDER BY id", (site,))
    else:
        rows = await tx.fetchall("SELECT * FROM devices ORDER BY site, id")
    return [_device(r) for r in rows]


async def register_device(tx: Tx, device_id: str, site: str, kind: str, now_ms: int) -> None:
    await tx.execute(
        "INSERT INTO devices (id, site, kind, registered_ms) VALUES (?, ?, ?, ?)",
        (device_id, site, kind, now_ms),
    )


async def set_status(
    tx: Tx, device_id: str, *, online: bool, boot_count: int, firmware: str, now_ms: int
) -> None:
    await tx.execute(
        "UPDATE devices SET online = ?, boot_count = ?, firmware = ?, last_seen_ms = ? "
        "WHERE id = ?",
        (int(online), boot_count, firmware, now_ms, device_id),
    )


async def get_compartment(tx: Tx, device_id: str, compartment_id: str) -> CompartmentRecord | None:
    row = await tx.fetchone(
        "SELECT * FROM compartments WHERE device = ? AND id = ?", (device_id, compartment_id)
    )
    return None if row is None else _compartment(row)


async def compartment_ids(tx: Tx, device_id: str) -> set[str]:
    rows = await tx.fetchall("SELECT id FROM compartments WHERE device = ?", (device_id,))
    return {r["id"] for r in rows}


async def set_compartment_state(
    tx: Tx, device_id: str, compartment_id: str, state: CompartmentState, parcel_id: str | None
) -> None:
    await tx.execute(
        "UPDATE compartments SET state = ?, parcel_id = ? WHERE device = ? AND id = ?",
        (str(state), parcel_id, device_id, compartment_id),
    )


async def reserve_compartment(tx: Tx, device_id: str, compartment_id: str, parcel_id: str) -> bool:
    """Free -> reserved; False when the compartment was no longer free."""
    changed = await tx.execute(
        "UPDATE compartments SET state = 'reserved', parcel_id = ? "
        "WHERE device = ? AND id = ? AND state = 'free'",
        (parcel_id, device_id, compartment_id),
    )
    return changed == 1


async def reserve_compartments(tx: Tx, rows: list[tuple[str, str, str]]) -> int:
    """Bulk :func:`reserve_compartment`: (cabinet, compartment, parcel) each; returns how many
    were still free (the caller compares it with ``len(rows)``)."""
    # On PostgreSQL one COPY and one UPDATE ... FROM for the whole batch (a VALUES list of
    # thousands of placeholders cost more to build and parse than to run).
    return await tx.update_many(
        "compartments",
        ("device", "id"),
        ("parcel_id",),
        rows,
        also="state = 'reserved'",
        where="compartments.state = 'free'",
    )


async def set_sensors(
    tx: Tx,
    device_id: str,
    compartment_id: str,
    *,
    door_open: bool | None = None,
    item_present: bool | None = None,
) -> None:
    await tx.execute(
        "UPDATE compartments SET door_open = COALESCE(?, door_open), "
        "item_present = COALESCE(?, item_present) WHERE device = ? AND id = ?",
        (door_open, item_present, device_id, compartment_id),
    )


async def set_sensors_many(tx: Tx, device_id: str, samples: list[tuple[str, bool, bool]]) -> None:
    """Door and item sensors of several compartments: (compartment, door_open, item_present)."""
    await tx.executemany(
        "UPDATE compartments SET door_open = ?, item_present = ? WHERE device = ? AND id = ?",
        [(door, item, device_id, compartment) for compartment, door, item in samples],
    )


async def set_doors(tx: Tx, doors: list[tuple[str, str, bool]]) -> None:
    """Door sensors of (device, compartment, open) each, in one executemany."""
    if doors:
        await tx.executemany(
            "UPDATE compartments SET door_open = ? WHERE device = ? AND id = ?",
            [(is_open, device, compartment) for device, compartment, is_open in doors],
        )


async def set_energy(
    tx: Tx, device_id: str, *, energy_wh: float, power_w: float, now_ms: int
) -> None:
    await tx.execute(
        "UPDATE devices SET energy_wh = ?, power_w = ?, last_seen_ms = ? WHERE id = ?",
        (energy_wh, power_w, now_ms, device_id),
    )


async def touch(tx: Tx, device_id: str, now_ms: int, seq: int = 0) -> None:
    await tx.execute(
        "UPDATE devices SET last_seen_ms = ?, last_seq = MAX(last_seq, ?) WHERE id = ?",
        (now_ms, seq, device_id),
    )


async def free_slots(tx: Tx, sites: Iterable[str]) -> list[FreeSlot]:
    """Free compartments of online cabinets at the given sites that the operator provisioned
    and the cabinet's last birth confirmed (nothing else is ever allocated)."""
    wanted = sorted(set(sites))
    if not wanted:
        return []
    marks = ",".join("?" * len(wanted))
    rows = await tx.fetchall(
        # Exactly FreeSlot's fields, in its order: a batch reads thousands of these.
        "SELECT c.device, c.id, d.site, c.width_mm, c.height_mm, c.depth_mm, c.max_weight_g, "  # noqa: S608 - placeholders only
        "c.zone FROM compartments c JOIN devices d ON d.id = c.device "
        f"WHERE c.state = 'free' AND d.online = 1 AND d.site IN ({marks}) "
        "AND d.kind = 'cabinet' AND d.provisioned = 1 AND c.provisioned = 1 AND c.confirmed = 1",
        wanted,
    )
    return [FreeSlot(*r) for r in rows]


async def occupancy(tx: Tx) -> Snapshot:
    """Counts by (site, size, state), zeros included: every state of every size class the fleet
    has, at every site with compartments (so that "0 occupied" is a value, not a missing series)."""
    comps = await tx.fetchall(
        "SELECT d.site, c.size, c.state, COUNT(*) AS n FROM compartments c "
        "JOIN devices d ON d.id = c.device GROUP BY d.site, c.size, c.state"
    )
    online = await tx.fetchall("SELECT kind, SUM(online) AS n FROM devices GROUP BY kind")
    sites = sorted({r["site"] for r in comps})
    sizes = sorted({r["size"] for r in comps})
    counts = {
        (site, size, str(state)): 0
        for site in sites
        for size in sizes
        for state in CompartmentState
    }
    counts.update({(r["site"], r["size"], r["state"]): r["n"] for r in comps})
    return Snapshot(
        compartments=counts,
        devices_online={r["kind"]: r["n"] for r in online},
    )


async def set_accept(tx: Tx, device_id: str, accept: str) -> None:
    """Record the content type a device asked for in its birth (empty = binary)."""
    await tx.execute("UPDATE devices SET accept = ? WHERE id = ?", (accept, device_id))


async def accepts(tx: Tx) -> dict[str, str]:
    """Device id -> content type its cmd and desired payloads are published in."""
    rows = await tx.fetchall("SELECT id, accept FROM devices")
    return {r["id"]: r["accept"] or CONTENT_TYPE_PROTOBUF for r in rows}


async def accept_of(tx: Tx, device_id: str) -> str:
    row = await tx.fetchone("SELECT accept FROM devices WHERE id = ?", (device_id,))
    return (row["accept"] if row is not None else "") or CONTENT_TYPE_PROTOBUF


async def disabled_compartments(tx: Tx, device_id: str) -> list[str]:
    rows = await tx.fetchall(
        "SELECT id FROM compartments WHERE device = ? AND state = 'disabled' ORDER BY id",
        (device_id,),
    )
    return [r["id"] for r in rows]


async def release_compartment(tx: Tx, device_id: str, compartment_id: str, parcel_id: str) -> bool:
    """Free a compartment held (reserved or occupied) by ``parcel_id``; False if it was not."""
    changed = await tx.execute(
        "UPDATE compartments SET state = 'free', parcel_id = NULL "
        "WHERE device = ? AND id = ? AND parcel_id = ? AND state IN ('reserved', 'occupied')",
        (device_id, compartment_id, parcel_id),
    )
    return changed == 1


async def set_enabled(tx: Tx, device_id: str, compartment_id: str, enabled: bool) -> bool:
    """free <-> disabled; False when the compartment holds a parcel (or is in fault)."""
    new, allowed = (
        ("free", "('disabled', 'free')")
        if enabled
        else (
            "disabled",
            "('free', 'disabled', 'fault')",
        )
    )
    changed = await tx.execute(
        f"UPDATE compartments SET state = ? WHERE device = ? AND id = ? AND state IN {allowed}",  # noqa: S608 - fixed literals
        (new, device_id, compartment_id),
    )
    return changed == 1


async def device_seq(tx: Tx, device_id: str) -> tuple[int, int]:
    """(last_seq, resend_requested_to) of a device."""
    row = await tx.fetchone(
        "SELECT last_seq, resend_requested_to FROM devices WHERE id = ?", (device_id,)
    )
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


async def set_resend_requested(tx: Tx, device_id: str, to_seq: int) -> None:
    await tx.execute(
        "UPDATE devices SET resend_requested_to = MAX(resend_requested_to, ?) WHERE id = ?",
        (to_seq, device_id),
    )


async def set_reported(tx: Tx, device_id: str, *, desired_applied: int, outbox_full: bool) -> None:
    await tx.execute(
        "UPDATE devices SET desired_applied = MAX(desired_applied, ?), outbox_full = ? "
        "WHERE id = ?",
        (desired_applied, int(outbox_full), device_id),
    )


async def silent_devices(
    tx: Tx, before_ms: int, *, piles_before_ms: int | None = None
) -> list[tuple[str, str, bool]]:
    """Devices said online whose last message is older than ``before_ms`` (charging piles:
    ``piles_before_ms``, when given): (id, site, is a charging pile)."""
    piles = before_ms if piles_before_ms is None else piles_before_ms
    rows = await tx.fetchall(
        "SELECT id, site, kind = 'charging_pile' AS pile FROM devices WHERE online = 1 AND "
        "last_seen_ms < CASE WHEN kind = 'charging_pile' THEN ? ELSE ? END ORDER BY id",
        (piles, before_ms),
    )
    return [(r["id"], r["site"], bool(r["pile"])) for r in rows]


async def list_sites(tx: Tx) -> list[Row]:
    """Sites with cabinet and compartment counts."""
    return await tx.fetchall(
        "SELECT s.id, s.name, s.lat, s.lon, "
        "(SELECT COUNT(*) FROM devices d WHERE d.site = s.id AND d.kind = 'cabinet') AS cabinets, "
        "(SELECT COUNT(*) FROM compartments c JOIN devices d ON d.id = c.device "
        " WHERE d.site = s.id AND c.state = 'free') AS free, "
        "(SELECT COUNT(*) FROM compartments c JOIN devices d ON d.id = c.device "
        " WHERE d.site = s.id) AS total FROM sites s ORDER BY s.id"
    )


# Compact telemetry history: one row per device and bucket (last energy, peak power, samples).
HISTORY_BUCKET_MS = 5 * 60_000


async def add_telemetry_history(
    tx: Tx, device_id: str, now_ms: int, *, energy_wh: float, power_w: float
) -> None:
    bucket = now_ms - now_ms % HISTORY_BUCKET_MS
    await tx.execute(
        "INSERT INTO telemetry_history (device, bucket_ms, energy_wh, power_w_max, samples) "
        "VALUES (?, ?, ?, ?, 1) ON CONFLICT(device, bucket_ms) DO UPDATE SET "
        "energy_wh = excluded.energy_wh, "
        "power_w_max = MAX(telemetry_history.power_w_max, excluded.power_w_max), "
        "samples = telemetry_history.samples + 1",
        (device_id, bucket, energy_wh, power_w),
    )


async def lock_in_order(tx: Tx, device_ids: list[str]) -> None:
    """Take the rows of ``device_ids`` for this transaction, in the given order (a no-op write:
    portable, unlike ``SELECT ... FOR UPDATE``)."""
    # One executemany: psycopg pipelines it (one round trip), still in order.
    await tx.executemany(
        "UPDATE devices SET last_seq = last_seq WHERE id = ?", [(d,) for d in device_ids]
    )


async def devices_seq(tx: Tx, device_ids: list[str]) -> dict[str, tuple[int, int]]:
    """(last_seq, resend_requested_to) of each of ``device_ids`` that exists."""
    found: dict[str, tuple[int, int]] = {}
    for start in range(0, len(device_ids), ROWS_PER_STATEMENT):
        chunk = device_ids[start : start + ROWS_PER_STATEMENT]
        marks = ",".join("?" * len(chunk))
        for r in await tx.fetchall(
            "SELECT id, last_seq, resend_requested_to FROM devices "  # noqa: S608 - placeholders only
            f"WHERE id IN ({marks})",
            chunk,
        ):
            found[r[0]] = (int(r[1]), int(r[2]))
    return found


async def touch_many(tx: Tx, rows: list[tuple[str, int, int]]) -> None:
    """:func:`touch` for each (device, now_ms, seq), in one executemany."""
    await tx.executemany(
        "UPDATE devices SET last_seen_ms = ?, last_seq = MAX(last_seq, ?) WHERE id = ?",
        [(now_ms, seq, device_id) for device_id, now_ms, seq in rows],
    )


async def raise_desired_applied(tx: Tx, device_id: str, version: int) -> None:
    """Record that ``device_id`` applied desired-state ``version`` (never lowers it)."""
    await tx.execute(
        "UPDATE devices SET desired_applied = MAX(desired_applied, ?) WHERE id = ?",
        (version, device_id),
    )


async def presence(tx: Tx) -> dict[str, DeviceInfo]:
    """Every device's site, kind and online flag, by id (the metrics snapshot)."""
    rows = await tx.fetchall("SELECT id, site, kind, online FROM devices")
    return {
        r["id"]: DeviceInfo(site=r["site"], kind=r["kind"], online=bool(r["online"])) for r in rows
    }


async def site_ids(tx: Tx) -> list[str]:
    """The ids of every site."""
    return [row["id"] for row in await tx.fetchall("SELECT id FROM sites")]
