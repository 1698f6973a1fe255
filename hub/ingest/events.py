"""Device events, applied exactly once: the ledger row and the effects share one transaction."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from hub.couriers import records as conduct_records
from hub.devices import desired
from hub.devices.alarms import AlarmService
from hub.devices.commands import CommandService, PendingCommand
from hub.devices.desired import DesiredStates
from hub.devices.gaps import Gaps
from hub.devices.registry import Registry
from hub.errors import Dropped, IllegalTransition
from hub.ingest import authz
from hub.ingest.ledger import EventLedger
from hub.metrics.catalogue import HubMetrics
from hub.models import ParcelRecord, ParcelState, alarm_kind_name
from hub.parcels.lifecycle import record_transition
from hub.parcels.notify import PickupNotice
from hub.parcels.outbox import NoticeOutbox
from hub.parcels.pickup import IssuedCode, issue_code
from hub.settings import PickupSettings
from hub.sorting.containers import Containers
from hub.sorting.plans import SortPlans
from hub.sorting.screening import Screening
from hub.store import Tx
from hub.store.repo import containers as containers_repo
from hub.store.repo import devices as devices_repo
from hub.store.repo import events as events_repo
from hub.store.repo import parcels as parcels_repo
from hub.store.repo import sorting as sorting_repo
from lockerhub.states import CompartmentState
from lockerhub.topics import Topic
from lockerhub.v1 import device_pb2

log = logging.getLogger(__name__)

FollowUp = Callable[[], Awaitable[None]]
_HOUR_MS = 3_600_000
# A seq this far past the highest seen is a fault (the largest edge outbox is 1e7 events): taking
# it as the new highest would switch gap detection off for the device.
MAX_SEQ_JUMP = 10_000_000


@dataclass(slots=True)
class Applied:
    """What applying one event changed, for the work that waits for the commit."""

    body: str
    follow_ups: list[FollowUp] = field(default_factory=list)
    transitions: list[ParcelState] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)  # kinds of the alarms it raised
    # (site, reason) of a sort exception; (site, result) of a screening result
    sort_exception: tuple[str, str] | None = None
    screened: tuple[str, str] | None = None


def valid_courier(courier_id: str) -> bool:
    """A courier id fit to store (devices are not trusted to send one)."""
    return 0 < len(courier_id) <= 64 and courier_id.isprintable()


class EventApplier:
    """Turns cabinet events into parcel, compartment, alarm and command changes."""

    def __init__(
        self,
        registry: Registry,
        commands: CommandService,
        outbox: NoticeOutbox,
        pickup: PickupSettings,
        metrics: HubMetrics,
        *,
        alarms: AlarmService,
        desired_states: DesiredStates,
        deadline_h: Callable[[str], float] | None = None,
        sorting_hub: Callable[[str], str] | None = None,
        plans: SortPlans | None = None,
        screening: Screening | None = None,
        containers: Containers | None = None,
        gaps: Gaps | None = None,
    ) -> None:
        self._gaps = gaps or Gaps(commands)
        self._plans = plans
        self._screening = screening
        self._containers = containers
        self._sorting_hub = sorting_hub or (lambda _site: "")
        self._alarms = alarms
        self._desired = desired_states
        self._deadline_h = deadline_h or (lambda _site: pickup.deadline_h)
        self._registry = registry
        self._commands = commands
        self._outbox = outbox
        self._pickup = pickup
        self._metrics = metrics

    async def prepare(self, event: device_pb2.DeviceEvent) -> IssuedCode | None:
        """Work to do before the transaction: PBKDF2 is slow and must not hold the store lock."""
        if event.WhichOneof("body") == "deposited":
            return await issue_code(self._pickup)
        return None

    async def apply(
        self,
        tx: Tx,
        topic: Topic,
        event: device_pb2.DeviceEvent,
        code: IssuedCode | None,
        now: int,
        ledger: EventLedger,
    ) -> Applied:
        """Apply one event inside the caller's transaction (exactly once: the ledger row is part
        of it); ``ledger`` keeps that row, the device's sequence and presence.

        Raises:
            Dropped: unknown sender, duplicate, or an event that does not fit the hub's state.
        """
        body = event.WhichOneof("body") or ""
        applied = Applied(body)
        kind = await self._registry.check_sender(tx, topic)
        scope = authz.authorize(kind, body, topic)
        if not await ledger.record(
            tx, topic.device, event.seq, event.event_id, body, event.ts_ms, now
        ):
            raise Dropped("duplicate", f"event seq {event.seq} of {topic.device} seen before")
        applied.follow_ups += await self._check_gap(tx, topic, event.seq, ledger, now)
        await ledger.touch(tx, topic.device, now, event.seq)
        await ledger.online(tx, self._alarms, topic.device)
        if body == "deposited":
            assert code is not None
            applied.follow_ups += await self._deposited(
                tx, topic, event.deposited, code, now, scope
            )
            applied.transitions.append(ParcelState.DEPOSITED)
        elif body == "picked_up":
            await self._picked_up(tx, topic, event.picked_up, now, scope)
            applied.transitions.append(ParcelState.PICKED_UP)
        elif body == "door_changed":
            applied.alarms += await self._door_changed(tx, topic, event, ledger)
        elif body == "alarm":
            applied.alarms += await self._alarm(tx, topic, event, now)
            ledger.raised(topic.device, *applied.alarms)
        elif body == "pickup_code_rejected" and event.pickup_code_rejected.locked_out:
            if await self._alarms.raise_(
                tx,
                site=topic.site,
                device=topic.device,
                kind="keypad_lockout",
                device_ts_ms=event.ts_ms,
                actor=f"device:{topic.device}",
            ):
                applied.alarms.append("keypad_lockout")
        elif body == "parcel_sorted":
            applied.transitions.append(
                await self._sorted(tx, topic, event.parcel_sorted, now, scope, applied)
            )
        else:
            await self._sorting_hub_event(tx, topic, event, scope, applied)
        return applied

    async def _sorting_hub_event(
        self,
        tx: Tx,
        topic: Topic,
        event: device_pb2.DeviceEvent,
        scope: authz.Scope,
        applied: Applied,
    ) -> None:
        """Sort plan reports, screening results and container moves (hub.sorting)."""
        body = applied.body
        if body == "sort_plan_applied" and self._plans is not None:
            await self._plans.applied(tx, topic, event.sort_plan_applied)
        elif body == "parcel_screened" and self._screening is not None:
            result = await self._screening.screened(
                tx,
                topic,
                event.parcel_screened,
                scope,
                sorting_hub=await self._hub_of_parcel(tx, event.parcel_screened.parcel_id),
            )
            applied.screened = (topic.site, result)
        elif body == "container_moved" and self._containers is not None:
            await self._containers.moved(
                tx,
                event.container_moved,
                site=topic.site,
                actor=f"device:{topic.device}",
                line=True,
            )

    async def _hub_of_parcel(self, tx: Tx, parcel_id: str) -> str:
        parcel = await parcels_repo.get_parcel(tx, parcel_id, history=False)
        return "" if parcel is None else self._sorting_hub(parcel.site)

    async def refused(self, tx: Tx, topic: Topic, event: device_pb2.DeviceEvent, now: int) -> None:
        """Keep a refused event in the ledger (after its rollback), so that its seq is no gap to
        ask a resend for and a replay of it is a duplicate."""
        body = event.WhichOneof("body") or ""
        if await events_repo.record_event(
            tx, topic.device, event.seq, event.event_id, f"refused:{body}", event.ts_ms, now
        ):
            await devices_repo.touch(tx, topic.device, now, event.seq)
            d = event.deposited
            if body == "deposited" and valid_courier(d.courier_id):
                await conduct_records.on_wrong_compartment(
                    tx, d.parcel_id, d.courier_id, topic.device, d.compartment_id, now
                )

    def count(self, applied: Applied) -> None:
        """Metrics of a committed event (before any follow-up, so they never lag the store)."""
        self._metrics.events_applied.labels(applied.body).inc()
        if applied.body == "pickup_code_rejected":
            self._metrics.pickup_code_rejected.inc()
        for state in applied.transitions:
            self._metrics.parcel_transitions.labels(str(state)).inc()
        for kind in applied.alarms:
            self._alarms.count(kind)
        if applied.sort_exception is not None:
            self._metrics.sorting.sort_exceptions.labels(*applied.sort_exception).inc()
            self._alarms.count("sort_exception")
        if applied.screened is not None and self._screening is not None:
            self._screening.count(*applied.screened)
        if applied.body in ("deposited", "picked_up"):
            self._desired.wake()

    async def _check_gap(
        self, tx: Tx, topic: Topic, seq: int, ledger: EventLedger, now: int
    ) -> list[FollowUp]:
        """Ask the device to resend events between the highest seen and ``seq`` (once per gap)."""
        first = await ledger.expected(tx, topic.device)
        if seq > first + MAX_SEQ_JUMP:
            raise Dropped("invalid", f"seq {seq} of {topic.device} jumps past {first - 1}")
        if seq <= first:
            return []
        pending = await self._gaps.found(tx, topic.device, topic.site, first, seq - 1, now)
        if pending is None:
            return []
        return [lambda: self._send(pending)]

    async def _compartment(self, tx: Tx, topic: Topic, compartment_id: str) -> None:
        if not await self._registry.has_compartments(tx, topic.device, {compartment_id}):
            raise Dropped(
                "unknown_compartment", f"{topic.device} named a compartment it does not have"
            )

    async def _parcel_at(
        self, tx: Tx, topic: Topic, parcel_id: str, compartment_id: str, scope: authz.Scope
    ) -> ParcelRecord:
        await self._compartment(tx, topic, compartment_id)
        parcel = await parcels_repo.get_parcel(tx, parcel_id, history=False)
        if parcel is None:
            raise Dropped("unknown_parcel", f"{topic.device} reported an unknown parcel")
        authz.check_parcel(scope, topic, parcel, compartment_id)
        return parcel

    async def _transition(
        self,
        tx: Tx,
        topic: Topic,
        parcel: ParcelRecord,
        new: ParcelState,
        now: int,
        deadline_ms: int | None = None,
        *,
        place: str | None = None,
        courier: str = "",
    ) -> None:
        """Record a device-caused transition at ``place`` (default: the parcel's compartment),
        naming the courier who caused it when the device said."""
        try:
            await record_transition(
                tx,
                parcel.parcel_id,
                parcel.state,
                new,
                ts_ms=now,
                actor=f"device:{topic.device}",
                location=f"{topic.site}/{topic.device}/{place or parcel.compartment_id}",
                pickup_deadline_ms=deadline_ms,
                courier=courier,
            )
        except IllegalTransition as exc:
            raise Dropped("mismatch", str(exc)) from exc

    async def _deposited(
        self,
        tx: Tx,
        topic: Topic,
        ev: device_pb2.Deposited,
        code: IssuedCode,
        now: int,
        scope: authz.Scope,
    ) -> list[FollowUp]:
        parcel = await self._parcel_at(tx, topic, ev.parcel_id, ev.compartment_id, scope)
        if await sorting_repo.is_held(tx, parcel.parcel_id):
            raise Dropped(
                "held", f"{topic.device} reported a deposit of a parcel held at screening"
            )
        deadline = now + int(self._deadline_h(topic.site) * _HOUR_MS)
        courier = ev.courier_id if valid_courier(ev.courier_id) else ""
        await self._transition(
            tx, topic, parcel, ParcelState.DEPOSITED, now, deadline, courier=courier
        )
        await conduct_records.on_deposit(
            tx, parcel.parcel_id, courier, now, f"device:{topic.device}"
        )
        await desired.mark(tx, topic.device, now)
        await devices_repo.set_compartment_state(
            tx, topic.device, ev.compartment_id, CompartmentState.OCCUPIED, parcel.parcel_id
        )
        await parcels_repo.store_code_hash(
            tx, parcel.parcel_id, code.code_hash, issued_ms=now, deadline_ms=deadline
        )
        command = device_pb2.Command(
            set_pickup_code=device_pb2.SetPickupCode(
                parcel_id=parcel.parcel_id,
                compartment_id=ev.compartment_id,
                code_hash=code.code_hash,
                deadline_ms=deadline,
            )
        )
        # The cabinet needs the hash until the deadline, even after an outage.
        pending = await self._commands.create(
            tx,
            device_id=topic.device,
            site=topic.site,
            command=command,
            ttl_ms=deadline - now,
            actor="hub",
        )
        # The recipient's notice is stored with the deposit (the only copy of the plaintext
        # code, until delivered) and sent by the outbox worker: never on the ingest path.
        notice = PickupNotice(
            parcel.parcel_id, "", code.code, topic.site, topic.device, ev.compartment_id, deadline
        )
        await self._outbox.add(tx, notice, now)
        return [lambda: self._send(pending), self._wake_outbox]

    async def _send(self, pending: PendingCommand) -> None:
        await self._commands.publish(pending)

    async def _wake_outbox(self) -> None:
        self._outbox.wake()

    async def _picked_up(
        self, tx: Tx, topic: Topic, ev: device_pb2.PickedUp, now: int, scope: authz.Scope
    ) -> None:
        parcel = await self._parcel_at(tx, topic, ev.parcel_id, ev.compartment_id, scope)
        await self._transition(tx, topic, parcel, ParcelState.PICKED_UP, now)
        await devices_repo.set_compartment_state(
            tx, topic.device, ev.compartment_id, CompartmentState.FREE, None
        )
        await parcels_repo.delete_code_hash(tx, parcel.parcel_id)
        await desired.mark(tx, topic.device, now)

    async def _sorted(
        self,
        tx: Tx,
        topic: Topic,
        ev: device_pb2.ParcelSorted,
        now: int,
        scope: authz.Scope,
        applied: Applied,
    ) -> ParcelState:
        """A sorting line diverted the parcel: SORTED, or RETURNED for a withdrawn parcel (it is
        back at the hub on its way to the sender)."""
        parcel = await parcels_repo.get_parcel(tx, ev.parcel_id, history=False)
        if parcel is None:
            raise Dropped("unknown_parcel", f"{topic.device} sorted an unknown parcel")
        authz.check_parcel(scope, topic, parcel, sorting_hub=self._sorting_hub(parcel.site))
        if self._plans is not None:
            reason = await self._plans.check_sorted(tx, topic, ev, parcel)
            if reason:
                applied.sort_exception = (topic.site, reason)
        new = ParcelState.RETURNED if parcel.state == ParcelState.WITHDRAWN else ParcelState.SORTED
        await self._transition(tx, topic, parcel, new, now, place=ev.chute_id)
        if new == ParcelState.SORTED:
            await containers_repo.count_share(tx, parcel.site, sorted_=1)
        return new

    async def _door_changed(
        self, tx: Tx, topic: Topic, event: device_pb2.DeviceEvent, ledger: EventLedger
    ) -> list[str]:
        """Returns the kinds of the alarms it raised."""
        ev = event.door_changed
        await self._compartment(tx, topic, ev.compartment_id)
        await ledger.door(tx, topic.device, ev.compartment_id, ev.open)
        # Any open nobody commanded is an alarm (door forced).
        if (
            ev.open
            and not ev.commanded
            and await self._alarms.raise_(
                tx,
                site=topic.site,
                device=topic.device,
                kind="door_forced",
                compartment=ev.compartment_id,
                device_ts_ms=event.ts_ms,
                actor=f"device:{topic.device}",
            )
        ):
            return ["door_forced"]
        return []

    async def _alarm(
        self, tx: Tx, topic: Topic, event: device_pb2.DeviceEvent, now: int
    ) -> list[str]:
        """Returns the kinds of the alarms it raised."""
        ev = event.alarm
        if ev.compartment_id:
            await self._compartment(tx, topic, ev.compartment_id)
        kind = alarm_kind_name(ev.kind)  # "unspecified" for a number newer than this hub
        if ev.active and kind == "door_forced" and ev.compartment_id:
            await conduct_records.on_forced_open(
                tx,
                f"{topic.site}/{topic.device}/{ev.compartment_id}",
                now,
                f"device:{topic.device}",
            )
        if ev.active:
            raised = await self._alarms.raise_(
                tx,
                site=topic.site,
                device=topic.device,
                kind=kind,
                compartment=ev.compartment_id,
                detail=ev.detail,
                device_ts_ms=event.ts_ms,
                actor=f"device:{topic.device}",
            )
            return [kind] if raised else []
        await self._alarms.clear_condition(
            tx,
            device=topic.device,
            kind=kind,
            compartment=ev.compartment_id,
            actor=f"device:{topic.device}",
        )
        return []
