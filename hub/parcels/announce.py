"""Dispatch: announce parcels (allocate + reserve + tell the cabinet), read and list them."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from hub.devices import desired
from hub.devices.commands import CommandService, PendingCommand
from hub.devices.desired import DesiredStates
from hub.errors import FailedPrecondition, InvalidArgument, NotFound
from hub.metrics.catalogue import HubMetrics
from hub.models import Dims, ParcelRecord, ParcelState, Transition, Zone
from hub.parcels.allocation import Allocator, ParcelDemand, allocate_smallest_fit
from hub.parcels.codes import CodeReissuer
from hub.parcels.consent import consent_refusal
from hub.parcels.lifecycle import check_transition, reannounceable, record_transition
from hub.parcels.phones import mask_phone
from hub.settings import ReservationSettings
from hub.store import Store, Tx
from hub.store.repo import devices as devices_repo
from hub.store.repo import parcels as repo
from hub.store.repo import privacy as privacy_repo
from lockerhub.clock import Clock
from lockerhub.v1 import device_pb2

_HOUR_MS = 3_600_000
# How long the cabinet may still open the door for a courier's withdrawal.
_WITHDRAW_OPEN_TTL_MS = 15 * 60_000
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
        cabinets: set[str] = set()

        # One transaction on the database thread: thousands of parcels cost one hop to it, not
        # ~10 per parcel (the body awaits only ``tx``).
        async def work(tx: Tx) -> None:
            existing = await repo.existing_ids(tx, [a.parcel_id for a in items])
            sites = {a.site for a in items}
            known_sites = {s for s in sites if await devices_repo.site_exists(tx, s)}
            todo = []
            again = await self._reannounceable(tx, existing)
            for a in items:
                refusal = consent_refusal(a.locker_consent, self._unspecified_consent)
                if refusal:
                    results[a.parcel_id] = AnnounceResult(a.parcel_id, False, reason=refusal)
                elif a.parcel_id in again:
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
            # Pure CPU work, already off the event loop here (on the database thread).
            chosen = self._allocator(demands, slots)
            for a, index in zip(todo, chosen, strict=True):
                if index is None:
                    results[a.parcel_id] = AnnounceResult(
                        a.parcel_id, False, reason="no free compartment fits"
                    )
                    continue
                slot = slots[index]
                if a.parcel_id in again:
                    await self._reserve_again(
                        tx, again[a.parcel_id], slot.cabinet_id, slot.compartment_id, now, hold_ms
                    )
                else:
                    await self._store_reserved(
                        tx, a, slot.cabinet_id, slot.compartment_id, now, hold_ms, actor
                    )
                await privacy_repo.set_consent(tx, a.parcel_id, a.locker_consent)
                command = device_pb2.Command(
                    reserve_compartment=device_pb2.ReserveCompartment(
                        parcel_id=a.parcel_id,
                        compartment_id=slot.compartment_id,
                        expires_ms=now + hold_ms,
                    )
                )
                pending.append(
                    await self._commands.create(
                        tx,
                        device_id=slot.cabinet_id,
                        site=slot.site,
                        command=command,
                        ttl_ms=hold_ms,
                        actor=actor,
                    )
                )
                results[a.parcel_id] = AnnounceResult(
                    a.parcel_id, True, slot.cabinet_id, slot.compartment_id
                )
                cabinets.add(slot.cabinet_id)
            for cabinet in sorted(cabinets):
                await desired.mark(tx, cabinet, now)

        await self._store.transaction_on_thread(work)
        self._desired.wake()
        accepted = sum(r.accepted for r in results.values())
        self._metrics.parcel_transitions.labels(str(ParcelState.ANNOUNCED)).inc(accepted)
        self._metrics.parcel_transitions.labels(str(ParcelState.RESERVED)).inc(accepted)
        await self._commands.publish_many(pending)
        return [results[a.parcel_id] for a in items]

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

    @staticmethod
    async def _reserve_again(
        tx: Tx, parcel: ParcelRecord, cabinet: str, compartment: str, now: int, hold_ms: int
    ) -> None:
        await repo.set_reservation(tx, parcel.parcel_id, cabinet, compartment, now + hold_ms, now)
        await _hold_compartment(
            tx, parcel.parcel_id, parcel.state, parcel.site, cabinet, compartment, now
        )

    async def _store_reserved(
        self,
        tx: Tx,
        a: Announcement,
        cabinet: str,
        compartment: str,
        now: int,
        hold_ms: int,
        actor: str,
    ) -> None:
        record = ParcelRecord(
            parcel_id=a.parcel_id,
            state=ParcelState.ANNOUNCED,
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
        await repo.insert_parcel(
            tx, record, phone=a.phone, reservation_expires_ms=now + hold_ms, now_ms=now
        )
        await repo.add_transition(
            tx, a.parcel_id, Transition(ParcelState.ANNOUNCED, now, actor, a.site)
        )
        await _hold_compartment(
            tx, a.parcel_id, ParcelState.ANNOUNCED, a.site, cabinet, compartment, now
        )

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
        self, *, site: str, state: ParcelState | None, page_size: int, page_token: str
    ) -> tuple[list[ParcelRecord], str]:
        """One page of parcels and the token of the next ("" at the end).

        Raises:
            InvalidArgument: page_size over the limit or a page_token this hub did not issue.
        """
        if page_size > MAX_PAGE_SIZE:
            raise InvalidArgument(f"page_size must be <= {MAX_PAGE_SIZE}")
        after = _decode_token(page_token) if page_token else 0
        async with self._store.read() as tx:
            page, next_seq = await repo.list_parcels(
                tx, site=site, state=state, after_seq=after, limit=page_size or DEFAULT_PAGE_SIZE
            )
        return page, "" if next_seq is None else _encode_token(next_seq)


def _location(parcel: ParcelRecord) -> str:
    if parcel.cabinet_id:
        return f"{parcel.site}/{parcel.cabinet_id}/{parcel.compartment_id}"
    return parcel.site


def _encode_token(seq: int) -> str:
    return base64.urlsafe_b64encode(f"p:{seq}".encode()).decode()


def _decode_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        if not text.startswith("p:"):
            raise ValueError(text)
        return int(text[2:])
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidArgument("page_token is not a token this hub issued") from None


async def _hold_compartment(
    tx: Tx,
    parcel_id: str,
    state: ParcelState,
    site: str,
    cabinet: str,
    compartment: str,
    now: int,
) -> None:
    """An announced parcel becomes reserved, and the allocated compartment is taken for it."""
    if state == ParcelState.ANNOUNCED:
        await record_transition(
            tx,
            parcel_id,
            state,
            ParcelState.RESERVED,
            ts_ms=now,
            actor="hub",
            location=f"{site}/{cabinet}/{compartment}",
        )
    if not await devices_repo.reserve_compartment(tx, cabinet, compartment, parcel_id):
        raise AssertionError("allocated compartment was not free inside the same transaction")
