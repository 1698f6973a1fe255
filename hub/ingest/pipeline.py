"""MQTT ingestion: parse, size-check, decode, check the sender, apply in batches; drop the rest.

The receive loop only enqueues (bounded queue: back-pressure on QoS 1, counted drops of QoS 0
telemetry when full); the apply loop takes whatever is queued (up to ``ingest.batch_size``) and
applies it in ONE transaction. A batch of events and telemetry is first applied whole, its
bookkeeping (ledger rows, device sequence and presence) read once and written once
(:class:`hub.ingest.ledger.BatchLedger`); a message refused after it wrote anything rolls that
attempt back, and the batch is applied again with each message inside a savepoint, so that a
refused message rolls back alone (also the path of status reports and command results).
Only after the commit are the messages acknowledged to the broker (PUBACK), so a hub killed at
any moment loses nothing it acknowledged; the broker redelivers the rest and the event ledger
(device, seq) / event_id makes the replay a no-op. Every drop is counted by reason
in ``lockerhub_ingest_dropped_total`` and logged without payload bytes, codes or phones.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from hub.devices import desired
from hub.devices.alarms import OFFLINE, AlarmService
from hub.devices.commands import CommandService
from hub.devices.desired import DesiredStates
from hub.devices.gaps import Gaps
from hub.devices.registry import Registry
from hub.errors import Dropped, StoreError, StoreUnavailable, Unauthorized
from hub.ingest.events import MAX_SEQ_JUMP, Applied, EventApplier
from hub.ingest.ledger import BatchLedger, DirectLedger, EventLedger, LedgerConflict, WriteCounter
from hub.metrics.catalogue import HubMetrics
from hub.mqtt.link import Inbound
from hub.parcels.pickup import IssuedCode
from hub.settings import IngestSettings
from hub.store import Store, Tx
from hub.store.repo import devices as devices_repo
from lockerhub.clock import Clock
from lockerhub.codec import decode
from lockerhub.errors import PayloadError, TopicError
from lockerhub.topics import Direction, Kind, Topic
from lockerhub.v1 import device_pb2

log = logging.getLogger(__name__)
# How often a batch waits for a store that does not answer (restart, failover) before retrying.
_STORE_AWAY_S = 0.5
# Batches applied message by message after one had to be redone that way: a device that keeps
# sending refused events costs the savepoint path, not that path twice.
_SLOW_AFTER_REDO = 20
# What may be applied whole: message kinds whose refusals are decided per message.
_WHOLE = (device_pb2.DeviceEvent, device_pb2.Telemetry)


class _Redo(Exception):
    """The whole-batch attempt must be rolled back and the batch applied message by message."""


AfterCommit = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class _Item:
    message: Inbound
    topic: Topic
    payload: object
    code: IssuedCode | None = None
    event: Applied | None = None
    after: list[AfterCommit] = field(default_factory=list)
    # Metrics of the last attempt, counted only once it committed: a batch that fails is
    # retried message by message, and must not count anything of the failed attempt.
    dropped: tuple[str, str] | None = None
    counts: list[Callable[[], None]] = field(default_factory=list)

    def retry(self) -> None:
        """Forget an earlier attempt at this message (it was rolled back)."""
        self.after, self.event, self.dropped, self.counts = [], None, None, []


def _devices(items: list[_Item]) -> list[str]:
    """The batch's devices in the one order every hub locks their rows in (sorted ids)."""
    return sorted({item.topic.device for item in items})


class Ingestor:
    """Owns the bounded queue between the MQTT receive loop and the batch apply loop."""

    def __init__(
        self,
        settings: IngestSettings,
        store: Store,
        registry: Registry,
        events: EventApplier,
        commands: CommandService,
        clock: Clock,
        metrics: HubMetrics,
        *,
        alarms: AlarmService,
        desired_states: DesiredStates,
        gaps: Gaps,
    ) -> None:
        self._gaps = gaps
        self._alarms = alarms
        self._desired = desired_states
        self._settings = settings
        self._store = store
        self._registry = registry
        self._events = events
        self._commands = commands
        self._clock = clock
        self._metrics = metrics
        self._queue: asyncio.Queue[Inbound] = asyncio.Queue(maxsize=settings.queue_size)
        self._slow_batches = 0

    async def receive(self, message: Inbound) -> None:
        """Enqueue a received message (the MQTT loop's sink).

        Telemetry is superseded by the next sample, so it is dropped (counted) when the queue is
        full; everything else waits for room, which holds back the receive loop (back-pressure).
        """
        if self._queue.full() and message.topic.endswith("/" + Kind.TELEMETRY.value):
            self._drop("overflow", "ingest queue full, telemetry sample dropped")
            message.ack()
            return
        await self._queue.put(message)

    async def run(self) -> None:
        """Apply queued messages in batches; runs until cancelled."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._settings.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self.handle_batch(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def join(self) -> None:
        """Wait until everything queued so far has been handled (tests, shutdown)."""
        await self._queue.join()

    async def handle(self, message: Inbound) -> None:
        """Process one message on its own; never raises (except cancellation)."""
        await self.handle_batch([message])

    async def handle_batch(self, batch: list[Inbound]) -> None:
        """Apply ``batch`` in one transaction, then acknowledge it in order; never raises
        (except cancellation)."""
        items = [item for m in batch if (item := self._parse(m)) is not None]
        for item in items:
            if isinstance(item.payload, device_pb2.DeviceEvent):
                item.code = await self._events.prepare(item.payload)
        try:
            applied = await self._apply_all(items)
        except StoreError as exc:
            # Not the devices' fault. Apply one by one so that one poisoned message cannot
            # block the rest; a message the store still refuses is counted and dropped.
            log.warning("store failed on an ingest batch, retrying message by message: %s", exc)
            applied = []
            for item in items:
                waits = 0
                while True:
                    try:
                        applied += await self._apply_all([item])
                    except StoreError as one:
                        # Unavailable (the connection was cut or refused) says nothing about the
                        # message even when the store answers the ping just after: it came
                        # back meanwhile. Away: keep it unacknowledged and try again.
                        if isinstance(one, StoreUnavailable) or not await self._store.ping():
                            if waits % 20 == 0:  # every 10 s: a stalled ingest shows in the log
                                log.warning("store away, ingest waits for it: %s", one)
                            waits += 1
                            await asyncio.sleep(_STORE_AWAY_S)  # the outside world: real time
                            continue
                        item.counts = []
                        item.dropped = (
                            "error",
                            f"store failed on {item.topic.kind} from {item.topic.device}: {one}",
                        )
                    break
        for item in items:  # committed (or given up): count each message once
            if item.dropped is not None:
                self._drop(*item.dropped)
                for count in item.counts:  # what the refusal itself stored (an alarm)
                    count()
        # Stored: now the broker may forget them (PUBACK in the order received, MQTT 5 4.6).
        for message in batch:
            message.ack()
        done = time.perf_counter()
        for item in applied:  # metrics first: they never lag what the store shows
            self._metrics.ingest_duration.labels(item.topic.kind.value).observe(
                max(0.0, done - item.message.received_at)
            )
            if item.event is not None:
                self._events.count(item.event)
            for count in item.counts:
                count()
        for item in applied:
            for after in item.after:
                try:
                    await after()
                except Exception:  # a follow-up failing must not stop ingestion
                    log.exception(
                        "follow-up of %s from %s failed", item.topic.kind, item.topic.device
                    )

    def _parse(self, message: Inbound) -> _Item | None:
        try:
            topic = Topic.parse(message.topic)
        except TopicError as exc:
            self._drop("topic", str(exc))
            return None
        self._metrics.ingest_messages.labels(topic.kind.value).inc()
        if topic.spec.direction is not Direction.DEVICE_TO_HUB:
            self._drop("topic", f"{topic.kind} is not a device-to-hub topic")
            return None
        try:
            payload = decode(
                topic.kind,
                message.payload,
                content_type=message.content_type,
                max_bytes=self._settings.max_payload_bytes,
            )
        except PayloadError as exc:
            self._drop(exc.reason, f"{topic.kind} from {topic.device}: {exc}")
            return None
        return _Item(message, topic, payload)

    async def _apply_all(self, items: list[_Item]) -> list[_Item]:
        """One transaction: the batch whole when it can be, else each message in a savepoint.

        The whole batch runs on the database thread (one hop instead of ~10 per message): the
        apply path awaits only ``tx``, never the network or a timer.
        """
        if self._slow_batches:
            self._slow_batches -= 1
        elif items and all(isinstance(item.payload, _WHOLE) for item in items):
            try:
                return await self._transaction(self._apply_whole, items)
            except _Redo:
                self._slow_batches = _SLOW_AFTER_REDO
        return await self._transaction(self._apply_in, items)

    async def _transaction(
        self, apply: Callable[[Tx, list[_Item]], Awaitable[list[_Item]]], items: list[_Item]
    ) -> list[_Item]:
        async def work(tx: Tx) -> list[_Item]:
            return await apply(tx, items)

        try:
            return await self._store.transaction_on_thread(work)
        except BaseException:
            # Rolled back: forget what the batch may have cached from its uncommitted writes.
            self._registry.forget_compartments()
            raise

    async def _apply_whole(self, tx: Tx, items: list[_Item]) -> list[_Item]:
        """The batch without savepoints, its bookkeeping read once and written once.

        A message refused before it wrote anything (a duplicate, an unknown sender) is dropped
        on the spot; one refused after a write, refused as unauthorised (its alarm is written
        after a rollback) or hitting a bug raises :class:`_Redo`.
        """
        ledger = BatchLedger()
        await ledger.prefetch(tx, _devices(items))
        counted = WriteCounter(tx)
        applied: list[_Item] = []
        for item in items:
            item.retry()
            wrote = (counted.writes, ledger.writes)
            try:
                await self._apply(counted, item, ledger)
            except StoreError:
                raise
            except Dropped as exc:
                if isinstance(exc, Unauthorized) or wrote != (counted.writes, ledger.writes):
                    raise _Redo from exc
                item.dropped = (exc.reason, str(exc))
            except Exception as exc:  # logged by the savepoint path, which meets it again
                raise _Redo from exc
            else:
                applied.append(item)
        try:
            await ledger.flush(tx)
        except LedgerConflict as exc:
            raise _Redo from exc
        return applied

    async def _apply_in(self, tx: Tx, items: list[_Item]) -> list[_Item]:
        # Several hubs apply batches of the same devices at once: take the batch's device rows
        # in one order (sorted ids) before anything else, so that two batches wait for each other
        # instead of deadlocking (PostgreSQL row locks; under SQLite's one writer, no waiting).
        await devices_repo.lock_in_order(tx, _devices(items))
        applied: list[_Item] = []
        for item in items:
            item.retry()
            await tx.execute("SAVEPOINT msg")
            try:
                await self._apply(tx, item, DirectLedger())
            except Dropped as exc:
                await tx.execute("ROLLBACK TO msg")
                item.counts, item.dropped = [], (exc.reason, str(exc))
                if isinstance(exc, Unauthorized):  # kept: the refusal itself is the evidence
                    await self._refused(tx, item, exc)
            except StoreError:
                raise
            except Exception:
                await tx.execute("ROLLBACK TO msg")
                log.exception("bug while applying %s from %s", item.topic.kind, item.topic.device)
                item.counts, item.dropped = [], ("error", "bug (logged above)")
            else:
                applied.append(item)
            await tx.execute("RELEASE msg")
        return applied

    async def _apply(self, tx: Tx, item: _Item, ledger: EventLedger) -> None:
        now = self._clock.now_ms()
        topic, payload = item.topic, item.payload
        if isinstance(payload, device_pb2.DeviceEvent):
            item.event = await self._events.apply(tx, topic, payload, item.code, now, ledger)
            item.after.extend(item.event.follow_ups)
        elif isinstance(payload, device_pb2.DeviceStatus):
            for kind in await self._status(tx, topic, payload, now):
                item.counts.append(functools.partial(self._alarms.count, kind))
            item.after.append(self._wake_desired)
        elif isinstance(payload, device_pb2.Telemetry):
            await self._registry.check_sender(tx, topic)
            await ledger.settle(tx, topic.device)  # a sample's sensors come after the events'
            await self._registry.apply_telemetry(tx, topic, payload, now)
            await devices_repo.add_telemetry_history(
                tx, topic.device, now, energy_wh=payload.energy_wh, power_w=payload.power_w
            )
            await ledger.online(tx, self._alarms, topic.device)
            if payload.last_seq and not payload.outbox_depth:
                await self._reported_seq(tx, topic, payload.last_seq, now, ledger)
        elif isinstance(payload, device_pb2.CommandResult):
            await self._registry.check_sender(tx, topic)
            item.counts.append(await self._commands.on_result(tx, topic.device, payload))

            async def wake(result: device_pb2.CommandResult = payload) -> None:
                self._commands.notify_result(result)

            item.after.append(wake)

    async def _reported_seq(
        self, tx: Tx, topic: Topic, reported: int, now: int, ledger: EventLedger
    ) -> None:
        """A sample says the broker took every event up to ``reported``: the ones this hub lacks
        are on their way or lost (a broker that restarted may acknowledge an event and deliver it
        to nobody), which the hub would otherwise learn only at the device's next event. The
        highest seen moves up to ``reported`` (the events, when they come, are then checked
        against the ledger) and the sweeper asks for what is still missing a while later."""
        first = await ledger.expected(tx, topic.device)
        if first <= reported <= first + MAX_SEQ_JUMP:
            await ledger.touch(tx, topic.device, now, reported)
            await self._gaps.reported(tx, topic.device, first, now)

    async def _status(
        self, tx: Tx, topic: Topic, status: device_pb2.DeviceStatus, now: int
    ) -> list[str]:
        """Presence, plus the alarms a status implies (offline, outbox full, a birth's layout
        differing from the provisioned one); returns the kinds of the alarms it raised."""
        online = status.state == device_pb2.DeviceStatus.STATE_ONLINE
        outcome = await self._registry.apply_status(tx, topic, status, now)
        if outcome.registered:
            await desired.mark(tx, topic.device, now)
        site, device, actor = topic.site, topic.device, f"device:{topic.device}"
        raised: list[str] = []
        if outcome.layout is not None and outcome.layout.problem:
            if await self._alarms.raise_(
                tx,
                site=site,
                device=device,
                kind="layout_mismatch",
                detail=outcome.layout.problem[:300],
                actor=actor,
            ):
                raised.append("layout_mismatch")
        elif outcome.layout is not None:
            await self._alarms.clear_condition(tx, device=device, kind="layout_mismatch")
        if online:
            await self._alarms.clear_condition(tx, device=topic.device, kind=OFFLINE)
        elif await self._alarms.raise_(
            tx,
            site=site,
            device=device,
            kind=OFFLINE,
            detail="offline status",
            actor=actor,
        ):
            raised.append(OFFLINE)
        if status.outbox_full:
            if await self._alarms.raise_(
                tx, site=site, device=device, kind="outbox_full", actor=actor
            ):
                raised.append("outbox_full")
        else:
            await self._alarms.clear_condition(tx, device=topic.device, kind="outbox_full")
        return raised

    async def _refused(self, tx: Tx, item: _Item, exc: Unauthorized) -> None:
        """An ``unauthorized_event`` alarm for the sender of a refused event (after its
        rollback, in the batch's transaction; counted once that commits)."""
        kind = "unauthorized_event"
        if isinstance(item.payload, device_pb2.DeviceEvent):
            await self._events.refused(tx, item.topic, item.payload, self._clock.now_ms())
        if await self._alarms.raise_(
            tx,
            site=item.topic.site,
            device=item.topic.device,
            kind=kind,
            detail=str(exc)[:200],
            actor=f"device:{item.topic.device}",
        ):
            item.counts.append(functools.partial(self._alarms.count, kind))

    async def _wake_desired(self) -> None:
        self._desired.wake()

    def _drop(self, reason: str, message: str) -> None:
        self._metrics.ingest_dropped.labels(reason).inc()
        log.info("dropped (%s): %.300s", reason, message)
