"""One AnnounceParcels batch inside its transaction: check, allocate, write in bulk.

A few statements per batch whatever its size (COPY on PostgreSQL), and little Python per parcel:
the rows are tuples built straight from each announcement (no intermediate records), a known
parcel's row is read once, and re-announced parcels are updated in bulk too.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.devices import desired
from hub.devices.commands import CommandService, PendingCommand
from hub.errors import StoreConflict
from hub.models import Dims, ParcelState, Zone
from hub.parcels.allocation import Allocator, ParcelDemand
from hub.parcels.consent import consent_refusal
from hub.parcels.lifecycle import check_transition, reannounceable
from hub.parcels.phones import mask_phone
from hub.parcels.quotas import QuotaRules, allocate_with_quotas
from hub.store import Tx
from hub.store.repo import carriers as carriers_repo
from hub.store.repo import devices as devices_repo
from hub.store.repo import parcels as repo
from lockerhub.v1 import device_pb2

_ANNOUNCED = str(ParcelState.ANNOUNCED)
_RESERVED = str(ParcelState.RESERVED)
_NOTHING_FITS = "no free compartment fits"


@dataclass(frozen=True, slots=True)
class Announcement:
    """A validated parcel announcement (phone already normalised)."""

    parcel_id: str
    site: str
    dims: Dims
    weight_g: int
    zone: Zone
    phone: str
    electronic_waybill: bool
    reusable_container: bool
    carrier_id: str = ""
    # "given", "refused" or "unspecified" (a client older than the field).
    locker_consent: str = "unspecified"

    def __repr__(self) -> str:
        return f"Announcement(parcel_id={self.parcel_id!r}, site={self.site!r})"


@dataclass(frozen=True, slots=True)
class AnnounceResult:
    parcel_id: str
    accepted: bool
    cabinet_id: str = ""
    compartment_id: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class BatchRules:
    """What one batch is decided with (the service's settings at the time of the call)."""

    now_ms: int
    hold_ms: int
    actor: str
    unspecified_consent: str
    allocator: Allocator


async def announce_batch(
    tx: Tx, items: list[Announcement], rules: BatchRules, commands: CommandService
) -> tuple[dict[str, AnnounceResult], list[PendingCommand]]:
    """Refuse, allocate and reserve ``items`` in ``tx``: each parcel's answer and the commands
    to publish once the transaction has committed."""
    now = rules.now_ms
    results: dict[str, AnnounceResult] = {}
    known_sites = {s for s in {a.site for a in items} if await devices_repo.site_exists(tx, s)}
    # Two hubs allocating at one site take turns (a no-op on SQLite, whose write transactions
    # are serial anyway): the free slots and the known parcels read below stay as read until
    # commit (a parcel re-announced by the other hub meanwhile has its compartment again).
    await tx.lock(*(f"allocate:{site}" for site in known_sites))
    existing = await repo.parcels_by_ids(tx, [a.parcel_id for a in items])
    again = {pid: p for pid, p in existing.items() if reannounceable(p)}
    carriers = {a.carrier_id for a in items if a.carrier_id}
    known_carriers = {c for c in carriers if await carriers_repo.carrier_exists(tx, c)}
    todo: list[Announcement] = []
    for a in items:
        refusal = consent_refusal(a.locker_consent, rules.unspecified_consent)
        if refusal:
            results[a.parcel_id] = AnnounceResult(a.parcel_id, False, reason=refusal)
        elif a.carrier_id and a.carrier_id not in known_carriers:
            results[a.parcel_id] = AnnounceResult(
                a.parcel_id, False, reason=f"unknown carrier {a.carrier_id}"
            )
        elif a.parcel_id in again and again[a.parcel_id].carrier_id == a.carrier_id:
            todo.append(a)
        elif a.parcel_id in existing:
            results[a.parcel_id] = AnnounceResult(a.parcel_id, False, reason="duplicate id")
        elif a.site not in known_sites:
            results[a.parcel_id] = AnnounceResult(
                a.parcel_id, False, reason=f"unknown site {a.site}"
            )
        else:
            todo.append(a)
    slots = await devices_repo.free_slots(tx, known_sites)
    demands = [
        ParcelDemand(
            a.parcel_id,
            a.site,
            a.dims.width_mm,
            a.dims.height_mm,
            a.dims.depth_mm,
            a.weight_g,
            str(a.zone),
        )
        for a in todo
    ]
    quotas = QuotaRules(*await carriers_repo.quota_rules(tx, {slot.cabinet_id for slot in slots}))
    owners = [a.carrier_id for a in todo]
    # Pure CPU work: off the event loop on both back ends.
    chosen = await tx.compute(
        lambda: allocate_with_quotas(rules.allocator, demands, owners, slots, quotas)
    )
    expires = now + rules.hold_ms
    new_rows: list[tuple[object, ...]] = []
    contacts: list[tuple[str, str]] = []
    history: list[tuple[str, str, str, int, str, str]] = []
    rebooked: list[tuple[str, str, str, int, int, str]] = []
    advanced: list[tuple[str, str, int]] = []
    rebooked_history: list[tuple[str, str, str, int, str, str]] = []
    holds: list[tuple[str, str, str]] = []
    reservations: list[tuple[str, str, device_pb2.Command]] = []
    for a, index in zip(todo, chosen, strict=True):
        pid = a.parcel_id
        if index is None:
            results[pid] = AnnounceResult(pid, False, reason=_NOTHING_FITS)
            continue
        slot = slots[index]
        cabinet, compartment = slot.cabinet_id, slot.compartment_id
        location = f"{slot.site}/{cabinet}/{compartment}"
        previous = again.get(pid)
        if previous is not None:
            rebooked.append((pid, cabinet, compartment, expires, now, a.locker_consent))
            if previous.state == ParcelState.ANNOUNCED:
                check_transition(pid, previous.state, ParcelState.RESERVED)
                advanced.append((pid, _RESERVED, now))
                rebooked_history.append((pid, previous.site, _RESERVED, now, "hub", location))
        else:
            new_rows.append(_parcel_row(a, cabinet, compartment, expires, now))
            contacts.append((pid, a.phone))
            history.append((pid, a.site, _ANNOUNCED, now, rules.actor, a.site))
            history.append((pid, a.site, _RESERVED, now, "hub", location))
        holds.append((cabinet, compartment, pid))
        reservations.append(
            (
                cabinet,
                slot.site,
                device_pb2.Command(
                    reserve_compartment=device_pb2.ReserveCompartment(
                        parcel_id=pid,
                        compartment_id=compartment,
                        expires_ms=expires,
                        carrier_id=a.carrier_id,
                    )
                ),
            )
        )
        results[pid] = AnnounceResult(pid, True, cabinet, compartment)
    # Re-announced parcels first (their history rows come before the new parcels', as when
    # they were written one by one), then the new parcels.
    await repo.rebook(tx, rebooked, advanced)
    await repo.add_transition_rows(tx, rebooked_history)
    await repo.insert_parcel_rows(tx, new_rows, contacts)
    await repo.add_transition_rows(tx, history)
    if await devices_repo.reserve_compartments(tx, holds) != len(holds):
        # Only possible if something took a slot without the site's lock: run again.
        raise StoreConflict("an allocated compartment was taken meanwhile")
    pending = await commands.create_many(tx, reservations, ttl_ms=rules.hold_ms, actor=rules.actor)
    for cabinet in sorted({c for c, _, _ in holds}):
        await desired.mark(tx, cabinet, now)
    return results, pending


def _parcel_row(
    a: Announcement, cabinet: str, compartment: str, expires_ms: int, now_ms: int
) -> tuple[object, ...]:
    """A new parcel's row, already reserved (columns: ``repo.PARCEL_COLUMNS``)."""
    dims = a.dims
    return (
        a.parcel_id,
        _RESERVED,
        a.site,
        cabinet,
        compartment,
        dims.width_mm,
        dims.height_mm,
        dims.depth_mm,
        a.weight_g,
        str(a.zone),
        mask_phone(a.phone),
        int(a.electronic_waybill),
        int(a.reusable_container),
        expires_ms,
        0,  # pickup deadline: set at deposit
        now_ms,
        now_ms,
        a.carrier_id,
        a.locker_consent,
    )
