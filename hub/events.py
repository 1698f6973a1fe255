"""Device events, applied exactly once: the ledger row and the effects share one transaction."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from hub.commands import CommandService, PendingCommand
from hub.errors import Dropped, IllegalTransition
from hub.lifecycle import record_transition
from hub.metrics import HubMetrics
from hub.models import CompartmentState, ParcelRecord, ParcelState
from hub.notify import Notifier, PickupNotice
from hub.pickup import IssuedCode, issue_code
from hub.registry import Registry
from hub.repo import devices as devices_repo
from hub.repo import events as events_repo
from hub.repo import parcels as parcels_repo
from hub.settings import PickupSettings
from hub.store import Store, Tx
from lockerhub.clock import Clock
from lockerhub.topics import Topic
from lockerhub.v1 import common_pb2, device_pb2

log = logging.getLogger(__name__)

FollowUp = Callable[[], Awaitable[None]]
_HOUR_MS = 3_600_000


class EventApplier:
    """Turns cabinet events into parcel, compartment, alarm and command changes."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        commands: CommandService,
        notifier: Notifier,
        clock: Clock,
        pickup: PickupSettings,
        metrics: HubMetrics,
    ) -> None:
        self._store = store
        self._registry = registry
        self._commands = commands
        self._notifier = notifier
        self._clock = clock
        self._pickup = pickup
        self._metrics = metrics

    async def handle(self, topic: Topic, event: device_pb2.DeviceEvent) -> None:
        """Apply one event once; follow-ups (commands, notices) run after the commit.

        Raises:
            Dropped: unknown sender, duplicate, or an event that does not fit the hub's state.
        """
        body = event.WhichOneof("body") or ""
        # Hash before the transaction: PBKDF2 is slow and must not hold the store lock.
        code = await issue_code(self._pickup) if body == "deposited" else None
        now = self._clock.now_ms()
        follow_ups: list[FollowUp] = []
        transitions: list[ParcelState] = []
        async with self._store.transaction() as tx:
            await self._registry.check_sender(tx, topic)
            if not await events_repo.record_event(
                tx, topic.device, event.seq, event.event_id, body, event.ts_ms, now
            ):
                raise Dropped("duplicate", f"event seq {event.seq} of {topic.device} seen before")
            await devices_repo.touch(tx, topic.device, now, event.seq)
            if body == "deposited":
                assert code is not None
                follow_ups += await self._deposited(tx, topic, event.deposited, code, now)
                transitions.append(ParcelState.DEPOSITED)
            elif body == "picked_up":
                await self._picked_up(tx, topic, event.picked_up, now)
                transitions.append(ParcelState.PICKED_UP)
            elif body == "door_changed":
                await self._door_changed(tx, topic, event, now)
            elif body == "alarm":
                await self._alarm(tx, topic, event, now)
            elif body == "pickup_code_rejected" and event.pickup_code_rejected.locked_out:
                await self._raise_alarm(tx, topic, "keypad_lockout", "", "", event.ts_ms, now)
        self._metrics.events_applied.labels(body).inc()
        if body == "pickup_code_rejected":
            self._metrics.pickup_code_rejected.inc()
        for state in transitions:
            self._metrics.parcel_transitions.labels(str(state)).inc()
        for follow_up in follow_ups:
            await follow_up()

    async def _compartment(self, tx: Tx, topic: Topic, compartment_id: str) -> None:
        if await devices_repo.get_compartment(tx, topic.device, compartment_id) is None:
            raise Dropped(
                "unknown_compartment", f"{topic.device} named a compartment it does not have"
            )

    async def _parcel_at(
        self, tx: Tx, topic: Topic, parcel_id: str, compartment_id: str
    ) -> ParcelRecord:
        await self._compartment(tx, topic, compartment_id)
        parcel = await parcels_repo.get_parcel(tx, parcel_id, history=False)
        if parcel is None:
            raise Dropped("unknown_parcel", f"{topic.device} reported an unknown parcel")
        if (parcel.cabinet_id, parcel.compartment_id) != (topic.device, compartment_id):
            raise Dropped("mismatch", f"{topic.device} reported a parcel reserved elsewhere")
        return parcel

    async def _transition(
        self,
        tx: Tx,
        topic: Topic,
        parcel: ParcelRecord,
        new: ParcelState,
        now: int,
        deadline_ms: int | None = None,
    ) -> None:
        try:
            await record_transition(
                tx,
                parcel.parcel_id,
                parcel.state,
                new,
                ts_ms=now,
                actor=f"device:{topic.device}",
                location=f"{topic.site}/{topic.device}/{parcel.compartment_id}",
                pickup_deadline_ms=deadline_ms,
            )
        except IllegalTransition as exc:
            raise Dropped("mismatch", str(exc)) from exc

    async def _deposited(
        self, tx: Tx, topic: Topic, ev: device_pb2.Deposited, code: IssuedCode, now: int
    ) -> list[FollowUp]:
        parcel = await self._parcel_at(tx, topic, ev.parcel_id, ev.compartment_id)
        deadline = now + int(self._pickup.deadline_h * _HOUR_MS)
        await self._transition(tx, topic, parcel, ParcelState.DEPOSITED, now, deadline)
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
        phone = await parcels_repo.recipient_phone(tx, parcel.parcel_id) or ""
        notice = PickupNotice(
            parcel.parcel_id,
            phone,
            code.code,
            topic.site,
            topic.device,
            ev.compartment_id,
            deadline,
        )
        return [lambda: self._send(pending), lambda: self._notify(notice)]

    async def _send(self, pending: PendingCommand) -> None:
        await self._commands.publish(pending)

    async def _notify(self, notice: PickupNotice) -> None:
        try:
            await self._notifier.notify(notice)
        except Exception:  # any notifier failure: count it, keep ingesting
            self._metrics.notifications_failed.inc()
            log.exception("notifier failed for parcel %s", notice.parcel_id)

    async def _picked_up(self, tx: Tx, topic: Topic, ev: device_pb2.PickedUp, now: int) -> None:
        parcel = await self._parcel_at(tx, topic, ev.parcel_id, ev.compartment_id)
        await self._transition(tx, topic, parcel, ParcelState.PICKED_UP, now)
        await devices_repo.set_compartment_state(
            tx, topic.device, ev.compartment_id, CompartmentState.FREE, None
        )

    async def _door_changed(
        self, tx: Tx, topic: Topic, event: device_pb2.DeviceEvent, now: int
    ) -> None:
        ev = event.door_changed
        await self._compartment(tx, topic, ev.compartment_id)
        await devices_repo.set_sensors(tx, topic.device, ev.compartment_id, door_open=ev.open)
        if ev.open and not ev.commanded:
            # Any open nobody commanded is an alarm (door forced).
            await self._raise_alarm(
                tx, topic, "door_forced", ev.compartment_id, "", event.ts_ms, now
            )

    async def _alarm(self, tx: Tx, topic: Topic, event: device_pb2.DeviceEvent, now: int) -> None:
        ev = event.alarm
        if ev.compartment_id:
            await self._compartment(tx, topic, ev.compartment_id)
        try:
            kind = common_pb2.AlarmKind.Name(ev.kind).removeprefix("ALARM_KIND_").lower()
        except ValueError:  # a number newer than this hub's contract
            kind = "unspecified"
        await events_repo.add_alarm(
            tx,
            topic.device,
            kind=kind,
            compartment_id=ev.compartment_id,
            detail=ev.detail,
            active=ev.active,
            device_ts_ms=event.ts_ms,
            received_ms=now,
        )
        if ev.active:
            self._metrics.alarms.labels(kind).inc()

    async def _raise_alarm(
        self, tx: Tx, topic: Topic, kind: str, compartment_id: str, detail: str, ts: int, now: int
    ) -> None:
        await events_repo.add_alarm(
            tx,
            topic.device,
            kind=kind,
            compartment_id=compartment_id,
            detail=detail,
            active=True,
            device_ts_ms=ts,
            received_ms=now,
        )
        self._metrics.alarms.labels(kind).inc()
