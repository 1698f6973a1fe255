"""MQTT ingestion: parse, size-check, decode, check the sender, apply; drop anything else.

The receive loop only enqueues (bounded queue); the apply loop does the work. Every drop is counted
by reason in ``lockerhub_ingest_dropped_total`` and logged without payload bytes, codes or phones;
nothing raised here reaches the loop, so the hub keeps running.
"""

from __future__ import annotations

import asyncio
import logging

from hub.commands import CommandService
from hub.errors import Dropped, StoreError
from hub.events import EventApplier
from hub.metrics import HubMetrics
from hub.mqtt import Inbound
from hub.registry import Registry
from hub.settings import IngestSettings
from hub.store import Store
from lockerhub.clock import Clock
from lockerhub.codec import decode
from lockerhub.errors import PayloadError, TopicError
from lockerhub.topics import Direction, Kind, Topic
from lockerhub.v1 import device_pb2

log = logging.getLogger(__name__)


class Ingestor:
    """Owns the bounded queue between the MQTT receive loop and the apply loop."""

    def __init__(
        self,
        settings: IngestSettings,
        store: Store,
        registry: Registry,
        events: EventApplier,
        commands: CommandService,
        clock: Clock,
        metrics: HubMetrics,
    ) -> None:
        self._settings = settings
        self._store = store
        self._registry = registry
        self._events = events
        self._commands = commands
        self._clock = clock
        self._metrics = metrics
        self._queue: asyncio.Queue[Inbound] = asyncio.Queue(maxsize=settings.queue_size)

    async def receive(self, message: Inbound) -> None:
        """Enqueue a received message (the MQTT loop's sink).

        Telemetry is superseded by the next sample, so it is dropped (counted) when the queue is
        full; everything else waits for room, which holds back the receive loop (back-pressure).
        """
        if self._queue.full() and message.topic.endswith("/" + Kind.TELEMETRY.value):
            self._drop("overflow", "ingest queue full, telemetry sample dropped")
            return
        await self._queue.put(message)

    async def run(self) -> None:
        """Apply queued messages one by one; runs until cancelled."""
        while True:
            message = await self._queue.get()
            try:
                await self.handle(message)
            finally:
                self._queue.task_done()

    async def join(self) -> None:
        """Wait until everything queued so far has been handled (tests, shutdown)."""
        await self._queue.join()

    async def handle(self, message: Inbound) -> None:
        """Process one message; never raises (except cancellation)."""
        try:
            topic = Topic.parse(message.topic)
        except TopicError as exc:
            self._drop("topic", str(exc))
            return
        self._metrics.ingest_messages.labels(topic.kind.value).inc()
        if topic.spec.direction is not Direction.DEVICE_TO_HUB:
            self._drop("topic", f"{topic.kind} is not a device-to-hub topic")
            return
        try:
            payload = decode(
                topic.kind,
                message.payload,
                content_type=message.content_type,
                max_bytes=self._settings.max_payload_bytes,
            )
            await self._apply(topic, payload)
        except PayloadError as exc:
            self._drop(exc.reason, f"{topic.kind} from {topic.device}: {exc}")
        except Dropped as exc:
            self._drop(exc.reason, str(exc))
        except StoreError as exc:
            # Not the device's fault; counted apart so an alert can tell the two apart.
            self._drop("error", f"store failed on {topic.kind} from {topic.device}: {exc}")
        except Exception:
            self._metrics.ingest_dropped.labels("error").inc()
            log.exception("bug while applying %s from %s", topic.kind, topic.device)

    async def _apply(self, topic: Topic, payload: object) -> None:
        now = self._clock.now_ms()
        if isinstance(payload, device_pb2.DeviceEvent):
            await self._events.handle(topic, payload)
        elif isinstance(payload, device_pb2.DeviceStatus):
            async with self._store.transaction() as tx:
                await self._registry.apply_status(tx, topic, payload, now)
        elif isinstance(payload, device_pb2.Telemetry):
            async with self._store.transaction() as tx:
                await self._registry.check_sender(tx, topic)
                await self._registry.apply_telemetry(tx, topic, payload, now)
        elif isinstance(payload, device_pb2.CommandResult):
            async with self._store.transaction() as tx:
                await self._registry.check_sender(tx, topic)
                await self._commands.on_result(tx, topic.device, payload)
            self._commands.notify_result(payload)

    def _drop(self, reason: str, message: str) -> None:
        self._metrics.ingest_dropped.labels(reason).inc()
        log.info("dropped (%s): %.300s", reason, message)
