"""Dispatch: announce parcels (allocate + reserve + tell the cabinet), read and list them."""

from __future__ import annotations

from hub.couriers.checks import require_active_courier
from hub.devices import desired
from hub.devices.commands import CommandService, PendingCommand
from hub.devices.desired import DesiredStates
from hub.errors import FailedPrecondition, InvalidArgument, NotFound
from hub.metrics.catalogue import HubMetrics
from hub.models import ParcelRecord, ParcelState
from hub.parcels.allocation import Allocator, allocate_smallest_fit
from hub.parcels.announcing import Announcement, AnnounceResult, BatchRules, announce_batch
from hub.parcels.codes import CodeReissuer
from hub.parcels.lifecycle import check_transition, record_transition
from hub.parcels.paging import decode_page_token, encode_page_token
from hub.settings import ReservationSettings
from hub.store import Store, Tx
from hub.store.repo import devices as devices_repo
from hub.store.repo import parcels as repo
from lockerhub.clock import Clock
from lockerhub.v1 import device_pb2

_HOUR_MS = 3_600_000
_WITHDRAW_OPEN_TTL_MS = 15 * 60_000  # how long the cabinet may still open for a withdrawal
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100


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
        rules = BatchRules(
            now_ms=self._clock.now_ms(),
            hold_ms=int(self._reservation.hold_h * _HOUR_MS),
            actor=actor,
            unspecified_consent=self._unspecified_consent,
            allocator=self._allocator,
        )

        # One transaction, written in bulk (a few statements per batch, not ~10 per parcel). On
        # SQLite it is one hop to the database thread; on PostgreSQL it is retried whole when it
        # loses a race with another hub, so it starts from scratch each time.
        async def work(tx: Tx) -> tuple[dict[str, AnnounceResult], list[PendingCommand]]:
            return await announce_batch(tx, items, rules, self._commands)

        results, pending = await self._store.transaction_on_thread(work)
        self._desired.wake()
        accepted = sum(r.accepted for r in results.values())
        self._metrics.parcel_transitions.labels(str(ParcelState.ANNOUNCED)).inc(accepted)
        self._metrics.parcel_transitions.labels(str(ParcelState.RESERVED)).inc(accepted)
        # Published in the background: the reservations are committed (and in each cabinet's
        # desired state); the caller need not wait for 10,000 PUBACKs.
        self._commands.publish_soon(pending)
        return [results[a.parcel_id] for a in items]

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
