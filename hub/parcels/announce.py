"""Dispatch: announce parcels (allocate + reserve + tell the cabinet), read and list them."""

from __future__ import annotations

from dataclasses import dataclass

from hub.couriers.checks import require_active_courier
from hub.devices import desired
from hub.devices.commands import CommandService, PendingCommand
from hub.devices.desired import DesiredStates
from hub.errors import FailedPrecondition, InvalidArgument, NotFound, StoreConflict
from hub.metrics.catalogue import HubMetrics
from hub.models import Dims, ParcelRecord, ParcelState, Transition, Zone
from hub.parcels.allocation import Allocator, ParcelDemand, allocate_smallest_fit
from hub.parcels.codes import CodeReissuer
from hub.parcels.consent import consent_refusal
from hub.parcels.lifecycle import check_transition, reannounceable, record_transition
from hub.parcels.paging import decode_page_token, encode_page_token
from hub.parcels.phones import mask_phone
from hub.parcels.quotas import QuotaRules, allocate_with_quotas
from hub.settings import ReservationSettings
from hub.store import Store, Tx
from hub.store.repo import carriers as carriers_repo
from hub.store.repo import devices as devices_repo
from hub.store.repo import parcels as repo
from hub.store.repo import privacy as privacy_repo
from lockerhub.clock import Clock
from lockerhub.v1 import device_pb2

_HOUR_MS = 3_600_000
_WITHDRAW_OPEN_TTL_MS = 15 * 60_000  # how long the cabinet may still open for a withdrawal
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100


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


class ParcelService:
    """The parcel side of DispatchService."""

    def __init__(
        self,
        store: Store,
        commands: CommandService,
        clock: Clock,
        reservation: ReservationSettings,
        metrics: HubMetrics,
        *,
        desired_states: DesiredStates,
        allocator: Allocator = allocate_smallest_fit,
        codes: CodeReissuer | None = None,
        unspecified_consent: str = "assume",
    ) -> None:
        self._unspecified_consent = unspecified_consent
        self._codes = codes
        self._desired = desired_states
        self._store = store
        self._commands = commands
        self._clock = clock
        self._reservation = reservation
        self._metrics = metrics
        self._allocator = allocator

    async def announce(
        self, items: list[Announcement], *, actor: str = "operator"
    ) -> list[AnnounceResult]:
        """Reserve a compartment for each parcel and send the cabinets their reservations.

        A parcel is refused (not stored) when its id exists, its site is unknown, nothing fits or
        its recipient did not consent to locker delivery (hub.parcels.consent).
        """
        now = self._clock.now_ms()
        hold_ms = int(self._reservation.hold_h * _HOUR_MS)
        results: dict[str, AnnounceResult] = {}
        pending: list[PendingCommand] = []

        # One transaction, written in bulk (a few statements per batch, not ~10 per parcel). On
        # SQLite it is one hop to the database thread; on PostgreSQL it is retried whole when it
        # loses a race with another hub, so it starts from scratch each time.
        async def work(tx: Tx) -> None:
            results.clear()
            pending.clear()
            existing = await repo.existing_ids(tx, [a.parcel_id for a in items])
            sites = {a.site for a in items}
            known_sites = {s for s in sites if await devices_repo.site_exists(tx, s)}
            # Two hubs allocating at one site take turns (a no-op on SQLite, whose write
            # transactions are serial anyway): the free slots read below stay free until commit.
            await tx.lock(*(f"allocate:{site}" for site in known_sites))
            todo = []
            again = await self._reannounceable(tx, existing)
            carriers = {a.carrier_id for a in items if a.carrier_id}
            known_carriers = {c for c in carriers if await carriers_repo.carrier_exists(tx, c)}
            for a in items:
                refusal = consent_refusal(a.locker_consent, self._unspecified_consent)
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
            rules = QuotaRules(
                *await carriers_repo.quota_rules(tx, {slot.cabinet_id for slot in slots})
            )
            owners = [a.carrier_id for a in todo]
            # Pure CPU work: off the event loop on both back ends.
            chosen = await tx.compute(
                lambda: allocate_with_quotas(self._allocator, demands, owners, slots, rules)
            )
            new: list[tuple[ParcelRecord, str, int, str]] = []
            history: list[tuple[str, str, Transition]] = []
            holds: list[tuple[str, str, str]] = []
            consents: list[tuple[str, str]] = []
            commands: list[tuple[str, str, device_pb2.Command]] = []
            for a, index in zip(todo, chosen, strict=True):
                if index is None:
                    results[a.parcel_id] = AnnounceResult(
                        a.parcel_id, False, reason="no free compartment fits"
                    )
                    continue
                slot = slots[index]
                location = f"{slot.site}/{slot.cabinet_id}/{slot.compartment_id}"
                if a.parcel_id in again:
                    parcel = again[a.parcel_id]
                    await repo.set_reservation(
                        tx, a.parcel_id, slot.cabinet_id, slot.compartment_id, now + hold_ms, now
                    )
                    if parcel.state == ParcelState.ANNOUNCED:
                        await record_transition(
                            tx,
                            a.parcel_id,
                            parcel.state,
                            ParcelState.RESERVED,
                            ts_ms=now,
                            actor="hub",
                            location=location,
                        )
                    consents.append((a.locker_consent, a.parcel_id))
                else:
                    new.append(
                        (
                            self._record(a, slot.cabinet_id, slot.compartment_id),
                            a.phone,
                            now + hold_ms,
                            a.locker_consent,
                        )
                    )
                    announced = Transition(ParcelState.ANNOUNCED, now, actor, a.site)
                    reserved = Transition(ParcelState.RESERVED, now, "hub", location)
                    history += [(a.parcel_id, a.site, announced), (a.parcel_id, a.site, reserved)]
                holds.append((slot.cabinet_id, slot.compartment_id, a.parcel_id))
                command = device_pb2.Command(
                    reserve_compartment=device_pb2.ReserveCompartment(
                        parcel_id=a.parcel_id,
                        compartment_id=slot.compartment_id,
                        expires_ms=now + hold_ms,
                        carrier_id=a.carrier_id,
                    )
                )
                commands.append((slot.cabinet_id, slot.site, command))
                results[a.parcel_id] = AnnounceResult(
                    a.parcel_id, True, slot.cabinet_id, slot.compartment_id
                )
            await repo.insert_parcels(tx, new, now_ms=now)
            await repo.add_transitions(tx, history)
            await privacy_repo.set_consents(tx, consents)  # re-announced parcels' consent
            if await devices_repo.reserve_compartments(tx, holds) != len(holds):
                # Only possible if something took a slot without the site's lock: run again.
                raise StoreConflict("an allocated compartment was taken meanwhile")
            pending.extend(
                await self._commands.create_many(tx, commands, ttl_ms=hold_ms, actor=actor)
            )
            for cabinet in sorted({c for c, _, _ in holds}):
                await desired.mark(tx, cabinet, now)

        await self._store.transaction_on_thread(work)
        self._desired.wake()
        accepted = sum(r.accepted for r in results.values())
        self._metrics.parcel_transitions.labels(str(ParcelState.ANNOUNCED)).inc(accepted)
        self._metrics.parcel_transitions.labels(str(ParcelState.RESERVED)).inc(accepted)
        # Published in the background: the reservations are committed (and in each cabinet's
        # desired state); the caller need not wait for 10,000 PUBACKs.
        self._commands.publish_soon(pending)
        return [results[a.parcel_id] for a in items]

    @staticmethod
    def _record(a: Announcement, cabinet: str, compartment: str) -> ParcelRecord:
        """A new parcel as stored: already reserved in ``cabinet``/``compartment``."""
        return ParcelRecord(
            parcel_id=a.parcel_id,
            state=ParcelState.RESERVED,
            site=a.site,
            cabinet_id=cabinet,
            compartment_id=compartment,
            dims=a.dims,
            weight_g=a.weight_g,
            zone=a.zone,
            phone_masked=mask_phone(a.phone),
            electronic_waybill=a.electronic_waybill,
            reusable_container=a.reusable_container,
            pickup_deadline_ms=0,
            carrier_id=a.carrier_id,
        )

    @staticmethod
    async def _reannounceable(tx: Tx, existing: set[str]) -> dict[str, ParcelRecord]:
        """Known parcels without a compartment (their hold expired): announcing them again
        allocates a new compartment instead of refusing a duplicate."""
        found: dict[str, ParcelRecord] = {}
        for parcel_id in existing:
            parcel = await repo.get_parcel(tx, parcel_id, history=False)
            if parcel is not None and reannounceable(parcel):
                found[parcel_id] = parcel
        return found

    async def cancel(self, parcel_id: str, *, reason: str, actor: str) -> ParcelRecord:
        """Cancel a parcel before deposit; its reservation is freed and the cabinet told.

        Raises:
            NotFound: unknown parcel.
            IllegalTransition: already deposited (or later).
        """
        now = self._clock.now_ms()
        pending: list[PendingCommand] = []
        async with self._store.transaction() as tx:
            parcel = await self._require(tx, parcel_id)
            check_transition(parcel_id, parcel.state, ParcelState.CANCELLED)
            if parcel.cabinet_id and await devices_repo.release_compartment(
                tx, parcel.cabinet_id, parcel.compartment_id, parcel_id
            ):
                pending.append(await self._cancel_reservation(tx, parcel, actor))
                await desired.mark(tx, parcel.cabinet_id, now)
            await record_transition(
                tx,
                parcel_id,
                parcel.state,
                ParcelState.CANCELLED,
                ts_ms=now,
                actor=actor,
                location=_location(parcel),
                detail=reason,
            )
        await self._after(pending, ParcelState.CANCELLED)
        return await self.get(parcel_id)

    async def withdraw(self, parcel_id: str, *, courier_id: str, actor: str) -> ParcelRecord:
        """An expired parcel is taken back by a courier: the compartment is opened and freed.

        Raises:
            NotFound: unknown parcel.
            IllegalTransition: the parcel is not expired.
        """
        now = self._clock.now_ms()
        pending: list[PendingCommand] = []
        async with self._store.transaction() as tx:
            parcel = await self._require(tx, parcel_id)
            check_transition(parcel_id, parcel.state, ParcelState.WITHDRAWN)
            if parcel.carrier_id:
                await require_active_courier(tx, courier_id, parcel.carrier_id)
            who = f"courier:{courier_id}" if courier_id else actor
            await record_transition(
                tx,
                parcel_id,
                parcel.state,
                ParcelState.WITHDRAWN,
                ts_ms=now,
                actor=who,
                location=_location(parcel),
                detail=f"requested by {actor}",
                courier=courier_id,
            )
            await repo.delete_code_hash(tx, parcel_id)
            if parcel.cabinet_id and await devices_repo.release_compartment(
                tx, parcel.cabinet_id, parcel.compartment_id, parcel_id
            ):
                # The courier takes the parcel out: open its door (audited with the command).
                command = device_pb2.Command(
                    open_compartment=device_pb2.OpenCompartment(
                        compartment_id=parcel.compartment_id, reason=f"withdraw {parcel_id}"
                    )
                )
                pending.append(
                    await self._commands.create(
                        tx,
                        device_id=parcel.cabinet_id,
                        site=parcel.site,
                        command=command,
                        ttl_ms=_WITHDRAW_OPEN_TTL_MS,
                        actor=who,
                    )
                )
                await desired.mark(tx, parcel.cabinet_id, now)
        await self._after(pending, ParcelState.WITHDRAWN)
        return await self.get(parcel_id)

    async def reissue_code(self, parcel_id: str, *, reason: str, actor: str) -> ParcelRecord:
        """A new pickup code for a deposited parcel (hub.parcels.codes); raises NotFound or
        FailedPrecondition."""
        if self._codes is None:
            raise FailedPrecondition("this hub cannot reissue codes")
        await self._codes.reissue(parcel_id, reason=reason, actor=actor)
        return await self.get(parcel_id)

    async def release_hold(self, tx: Tx, parcel: ParcelRecord, now: int) -> PendingCommand | None:
        """The reservation's hold ran out before a deposit (the sweeper, in its transaction):
        free the compartment, tell the cabinet; a RESERVED parcel goes back to ANNOUNCED."""
        command = None
        if await devices_repo.release_compartment(
            tx, parcel.cabinet_id, parcel.compartment_id, parcel.parcel_id
        ):
            command = await self._cancel_reservation(tx, parcel, "hub")
        await desired.mark(tx, parcel.cabinet_id, now)
        await repo.clear_reservation(tx, parcel.parcel_id, now)
        if parcel.state == ParcelState.RESERVED:
            await record_transition(
                tx,
                parcel.parcel_id,
                parcel.state,
                ParcelState.ANNOUNCED,
                ts_ms=now,
                actor="hub",
                location=_location(parcel),
                detail="reservation hold expired",
            )
        return command

    async def _cancel_reservation(self, tx: Tx, parcel: ParcelRecord, actor: str) -> PendingCommand:
        command = device_pb2.Command(
            cancel_reservation=device_pb2.CancelReservation(
                parcel_id=parcel.parcel_id, compartment_id=parcel.compartment_id
            )
        )
        return await self._commands.create(
            tx,
            device_id=parcel.cabinet_id,
            site=parcel.site,
            command=command,
            ttl_ms=int(self._reservation.hold_h * _HOUR_MS),
            actor=actor,
        )

    async def _after(self, pending: list[PendingCommand], state: ParcelState) -> None:
        self._metrics.parcel_transitions.labels(str(state)).inc()
        self._desired.wake()
        for p in pending:
            await self._commands.publish(p)

    @staticmethod
    async def _require(tx: Tx, parcel_id: str) -> ParcelRecord:
        parcel = await repo.get_parcel(tx, parcel_id, history=False)
        if parcel is None:
            raise NotFound(f"parcel {parcel_id!r} not found")
        return parcel

    async def get(self, parcel_id: str) -> ParcelRecord:
        """Raises NotFound."""
        async with self._store.read() as tx:
            parcel = await repo.get_parcel(tx, parcel_id)
        if parcel is None:
            raise NotFound(f"parcel {parcel_id!r} not found")
        return parcel

    async def list(
        self,
        *,
        site: str,
        state: ParcelState | None,
        page_size: int,
        page_token: str,
        carrier: str = "",
    ) -> tuple[list[ParcelRecord], str]:
        """One page of parcels (only ``carrier``'s if given) and the next page's token ("": end).

        Raises:
            InvalidArgument: page_size over the limit or a page_token this hub did not issue.
        """
        if page_size > MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size must be <= {MAX_PAGE_SIZE}")
        after = decode_page_token(page_token) if page_token else 0
        async with self._store.read() as tx:
            page, next_seq = await repo.list_parcels(
                tx,
                site=site,
                state=state,
                after_seq=after,
                limit=page_size or DEFAULT_PAGE_SIZE,
                carrier=carrier,
            )
        return page, "" if next_seq is None else encode_page_token(next_seq)


def _location(parcel: ParcelRecord) -> str:
    if parcel.cabinet_id:
        return f"{parcel.site}/{parcel.cabinet_id}/{parcel.compartment_id}"
    return parcel.site
