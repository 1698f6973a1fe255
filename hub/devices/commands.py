"""Commands to devices: created with an id and expiry, published, tracked to a final state."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from hub.errors import BrokerError, CommandTimeout, DeviceUnavailable, Dropped
from hub.metrics.catalogue import HubMetrics
from hub.models import OUTCOME_SUCCESS, CommandOutcome, CommandState, outcome_name
from hub.settings import CommandSettings
from hub.store import Store, Tx
from hub.store.repo import commands as repo
from hub.store.repo import devices as devices_repo
from lockerhub.clock import Clock
from lockerhub.codec import CONTENT_TYPE_PROTOBUF, encode, encode_as
from lockerhub.topics import Kind, Topic
from lockerhub.v1 import common_pb2, device_pb2

log = logging.getLogger(__name__)


# Committed command batches waiting to be published in the background.
_OUTGOING_BATCHES = 64
# QoS 1 publishes of a batch in flight at once: their PUBACK round trips overlap instead of
# adding up (10,000 reservations took 2.7 s one at a time on loopback, far more over a network).
# Each worker takes the next command and hands it to the client before it waits, so they reach
# the broker in the batch's order.
_PUBLISH_WINDOW = 32


class Publisher(Protocol):
    """Whatever puts a command on the wire (the broker connection)."""

    async def publish(
        self,
        topic: Topic,
        payload: bytes,
        *,
        expiry_ms: int | None,
        content_type: str = CONTENT_TYPE_PROTOBUF,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class PendingCommand:
    """A command stored as queued, to publish once its transaction has committed."""

    command_id: str
    topic: Topic
    payload: bytes  # binary, as stored
    expires_ms: int
    content_type: str = CONTENT_TYPE_PROTOBUF  # what the device asked for in its birth


def _uuid4_strings(n: int) -> list[str]:
    """``n`` random (version 4, RFC 4122 variant) UUIDs, formatted like ``str(uuid.uuid4())``:
    one read of the random source and string slicing, a third of the cost of ``uuid.uuid4()``
    (a batch of 10,000 reservations makes 10,000)."""
    raw = os.urandom(16 * n).hex()
    out = []
    for i in range(0, len(raw), 32):
        h = raw[i : i + 32]
        variant = _UUID_VARIANT[int(h[16], 16) & 3]
        out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}")
    return out


_UUID_VARIANT = "89ab"  # the top two bits of clock_seq_hi are 10 (RFC 4122)


class CommandService:
    """Creates, publishes and tracks commands; wakes whoever waits for a result."""

    def __init__(
        self,
        store: Store,
        publisher: Publisher,
        clock: Clock,
        settings: CommandSettings,
        metrics: HubMetrics,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._settings = settings
        self._metrics = metrics
        self._waiters: dict[str, asyncio.Future[CommandOutcome]] = {}
        # Committed batches waiting for run_publisher; on overflow the rows stay queued in the
        # store and the publisher flushes them from there.
        self._outgoing: asyncio.Queue[list[PendingCommand]] = asyncio.Queue(_OUTGOING_BATCHES)
        self._overflowed = False

    async def create(
        self,
        tx: Tx,
        *,
        device_id: str,
        site: str,
        command: device_pb2.Command,
        ttl_ms: int,
        actor: str,
    ) -> PendingCommand:
        """Store ``command`` (body set by the caller) as queued inside the caller's transaction."""
        now = self._clock.now_ms()
        command.command_id = str(uuid.uuid4())
        command.issued_ms = now
        command.expires_ms = now + ttl_ms
        payload = encode(command)
        await repo.insert_command(
            tx,
            command_id=command.command_id,
            device_id=device_id,
            type_=command.WhichOneof("body") or "",
            body=payload,
            actor=actor,
            created_ms=now,
            expires_ms=command.expires_ms,
        )
        return PendingCommand(
            command.command_id,
            Topic(site, device_id, Kind.COMMAND),
            payload,
            command.expires_ms,
            await devices_repo.accept_of(tx, device_id),
        )

    async def create_many(
        self,
        tx: Tx,
        commands: list[tuple[str, str, device_pb2.Command]],
        *,
        ttl_ms: int,
        actor: str,
    ) -> list[PendingCommand]:
        """:meth:`create` for many (device, site, command) at once: one bulk insert."""
        now = self._clock.now_ms()
        expires = now + ttl_ms
        # Per device, not per command: its topic and the payload format it asked for.
        targets: dict[tuple[str, str], tuple[Topic, str]] = {}
        rows: list[tuple[str, str, str, bytes, str, int, int]] = []
        out: list[PendingCommand] = []
        for (device_id, site, command), command_id in zip(
            commands, _uuid4_strings(len(commands)), strict=True
        ):
            command.command_id = command_id
            command.issued_ms = now
            command.expires_ms = expires
            payload = encode(command)
            rows.append(
                (
                    command_id,
                    device_id,
                    command.WhichOneof("body") or "",
                    payload,
                    actor,
                    now,
                    expires,
                )
            )
            target = targets.get((device_id, site))
            if target is None:
                target = targets[device_id, site] = (
                    Topic(site, device_id, Kind.COMMAND),
                    await devices_repo.accept_of(tx, device_id),
                )
            out.append(PendingCommand(command_id, target[0], payload, expires, target[1]))
        await repo.insert_commands(tx, rows)
        return out

    def publish_soon(self, pendings: list[PendingCommand]) -> None:
        """Hand committed commands to :meth:`run_publisher` (the caller does not wait for the
        broker). They are rows in the store already: if the queue is full they stay queued
        there and the publisher sends them from the store."""
        if not pendings:
            return
        try:
            self._outgoing.put_nowait(pendings)
        except asyncio.QueueFull:
            log.warning("command publisher busy: %d commands wait in the store", len(pendings))
            self._overflowed = True

    async def run_publisher(self) -> None:
        """Publish what :meth:`publish_soon` handed over, batch by batch; runs until cancelled."""
        while True:
            batch = await self._outgoing.get()
            await self.publish_many(batch)
            if self._overflowed and self._outgoing.empty():
                self._overflowed = False
                await self.flush_queued()

    async def publish(self, pending: PendingCommand) -> bool:
        """Publish a committed command; on a broker failure it stays queued (False)."""
        if not await self._publish_only(pending):
            return False
        async with self._store.transaction() as tx:
            await repo.mark_sent(tx, pending.command_id, self._clock.now_ms())
        return True

    async def publish_many(self, pendings: list[PendingCommand]) -> int:
        """Publish committed commands in order, up to ``_PUBLISH_WINDOW`` awaiting their PUBACK
        at once, then mark the sent ones in ONE transaction (a batch of reservations must not
        cost a transaction per command); return how many were sent. A command that could not
        be sent stays queued for the sweeper."""
        ok = [False] * len(pendings)
        todo = iter(enumerate(pendings))

        async def worker() -> None:
            for i, pending in todo:
                ok[i] = await self._publish_only(pending)

        async with asyncio.TaskGroup() as tg:
            for _ in range(min(_PUBLISH_WINDOW, len(pendings))):
                tg.create_task(worker())
        sent = [p.command_id for p, done in zip(pendings, ok, strict=True) if done]
        if sent:
            now = self._clock.now_ms()

            async def work(tx: Tx) -> None:
                await repo.mark_sent_many(tx, sent, now)

            await self._store.transaction_on_thread(work)
        return len(sent)

    async def _publish_only(self, pending: PendingCommand) -> bool:
        remaining = pending.expires_ms - self._clock.now_ms()
        if remaining <= 0:
            return False
        try:
            payload = pending.payload
            if pending.content_type != CONTENT_TYPE_PROTOBUF:
                payload = encode_as(device_pb2.Command.FromString(payload), pending.content_type)
            await self._publisher.publish(
                pending.topic, payload, expiry_ms=remaining, content_type=pending.content_type
            )
        except BrokerError as exc:
            log.warning("command %s stays queued: %s", pending.command_id, exc)
            return False
        return True

    async def send_and_wait(self, pending: PendingCommand) -> CommandOutcome:
        """Publish a committed command and wait for its result until expiry (+ grace).

        Raises:
            DeviceUnavailable: the broker link is down (the command is marked failed).
            CommandTimeout: no result in time (the command is marked timed_out).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[CommandOutcome] = loop.create_future()
        self._waiters[pending.command_id] = future
        try:
            if not await self.publish(pending):
                # Never leave a door-open queued to run late: fail it now.
                await self._finish(
                    pending.command_id, CommandState.FAILED, "not_sent", "broker unavailable"
                )
                raise DeviceUnavailable(
                    f"command {pending.command_id} not sent: the hub is not connected to the broker"
                )
            wait_s = (pending.expires_ms - self._clock.now_ms()) / 1000
            try:
                # asyncio.timeout, not wait_for (CPython gh-86296: a lost cancellation).
                async with asyncio.timeout(max(0.0, wait_s) + self._settings.result_timeout_s):
                    return await asyncio.shield(future)
            except TimeoutError:
                await self._finish(
                    pending.command_id,
                    CommandState.TIMED_OUT,
                    "timed_out",
                    "no result before expiry",
                )
                raise CommandTimeout(
                    f"cabinet {pending.topic.device} sent no result for command "
                    f"{pending.command_id} before it expired"
                ) from None
        finally:
            self._waiters.pop(pending.command_id, None)

    async def _finish(
        self, command_id: str, state: CommandState, outcome: str, detail: str
    ) -> None:
        async with self._store.transaction() as tx:
            changed = await repo.complete(
                tx,
                command_id,
                state=state,
                outcome=outcome,
                relay_fired=False,
                detail=detail,
                now_ms=self._clock.now_ms(),
                only_open=True,
            )
        if changed:
            self._metrics.commands.labels(outcome).inc()

    async def on_result(
        self, tx: Tx, device_id: str, result: device_pb2.CommandResult
    ) -> Callable[[], None]:
        """Apply a device's command result inside the ingest transaction; return what counts it,
        for the caller to run once the transaction committed.

        Raises:
            Dropped: unknown command, another device's command, or a repeated result.
        """
        record = await repo.get_command(tx, result.command_id)
        if record is None:
            raise Dropped("unknown_command", f"result for unknown command from {device_id}")
        if record.device_id != device_id:
            raise Dropped(
                "misplaced", f"{device_id} reported a result for another device's command"
            )
        if result.outcome in OUTCOME_SUCCESS:
            state = CommandState.SUCCEEDED
        elif result.outcome == common_pb2.COMMAND_OUTCOME_EXPIRED:
            state = CommandState.EXPIRED
        else:
            state = CommandState.FAILED
        name = outcome_name(result.outcome)
        now_ms = self._clock.now_ms()
        if not await repo.complete(
            tx,
            result.command_id,
            state=state,
            outcome=name,
            relay_fired=result.relay_fired,
            detail=result.detail,
            now_ms=now_ms,
            only_open=False,
        ):
            raise Dropped("duplicate", f"repeated result for command from {device_id}")
        sent_ms, type_ = record.sent_ms, record.type

        def count() -> None:
            self._metrics.commands.labels(name).inc()
            if sent_ms:
                self._metrics.observe_command(type_, (now_ms - sent_ms) / 1000)

        return count

    def notify_result(self, result: device_pb2.CommandResult) -> None:
        """Wake a waiter after the result's transaction committed."""
        future = self._waiters.get(result.command_id)
        if future is not None and not future.done():
            future.set_result(
                CommandOutcome(result.command_id, result.outcome, result.relay_fired, result.detail)
            )

    async def run_sweeper(self) -> None:
        """Mark commands unanswered after expiry (+ grace) as expired; runs until cancelled."""
        grace_ms = int(self._settings.result_timeout_s * 1000)
        while True:
            await self._clock.sleep(self._settings.sweep_interval_s)
            now = self._clock.now_ms()
            async with self._store.transaction() as tx:
                count = await repo.expire_due(tx, now - grace_ms, now)
            if count:
                self._metrics.commands.labels("expired").inc(count)

    async def flush_queued(self) -> None:
        """Publish commands stored while the broker was down (called after each connect)."""
        now = self._clock.now_ms()
        async with self._store.read() as tx:
            rows = await repo.queued(tx, now)
            sites = {d.device_id: d.site for d in await devices_repo.list_devices(tx)}
            formats = await devices_repo.accepts(tx)
        for command_id, device_id, body, expires_ms in rows:
            if device_id in sites:
                topic = Topic(sites[device_id], device_id, Kind.COMMAND)
                await self.publish(
                    PendingCommand(command_id, topic, body, expires_ms, formats[device_id])
                )
