"""The MQTT session: birth, will and boot counter, the retained status, and reconnecting.

The retry policy (jittered exponential backoff, a counter) lives here, in the caller of
``edge.link.Link``; the link stays a plain connection (aiomqtt docs/reconnection.md style). Per
connection it publishes the birth, then reads commands, pumps the outbox and republishes the
status when ``outbox_full`` changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from edge.errors import LinkError
from edge.link import Link
from edge.messages import spec_proto
from edge.settings import EdgeSettings
from edge.state import CabinetState
from edge.stats import AgentStats
from lockerhub.backoff import Backoff
from lockerhub.topics import Kind
from lockerhub.v1 import device_pb2

log = logging.getLogger(__name__)

Incoming = device_pb2.Command | device_pb2.DesiredState
_OFFLINE_PUBLISH_S = 2.0
ONLINE = device_pb2.DeviceStatus.STATE_ONLINE
OFFLINE = device_pb2.DeviceStatus.STATE_OFFLINE


class Session:
    """Keeps the cabinet connected; ``run()`` until cancelled.

    Args:
        commands: where received commands and desired states go (bounded; the executor reads).
        kind: what the birth says this device is.
    """

    def __init__(
        self,
        settings: EdgeSettings,
        state: CabinetState,
        *,
        stats: AgentStats,
        commands: asyncio.Queue[Incoming],
        kind: device_pb2.DeviceKind.ValueType,
        rng: random.Random,
        connected: asyncio.Event | None = None,
    ) -> None:
        self._settings = settings
        self._state = state
        self._stats = stats
        self._commands = commands
        self._kind = kind
        self._backoff = Backoff(
            settings.broker.reconnect_min_s, settings.broker.reconnect_max_s, rng=rng
        )
        self._reported_full = False
        # Built once: an unreadable certificate is a configuration error, not a retry.
        self._tls = settings.broker.tls_context()
        self.link: Link | None = None
        self.connected = connected or asyncio.Event()

    async def run(self) -> None:
        """Connect, serve, and reconnect after a backoff whenever the link fails."""
        while True:
            try:
                await self._connect()
            except LinkError as exc:
                self._stats.connect_failures += 1
                delay = self._backoff.next_delay()
                log.warning(
                    "broker link down (%s); retry %d in %.1fs", exc, self._backoff.attempt, delay
                )
                await self._state.clock.sleep(delay)

    def status(self, state: device_pb2.DeviceStatus.State.ValueType) -> device_pb2.DeviceStatus:
        """The retained status message (birth, will, updates)."""
        s = self._state
        return device_pb2.DeviceStatus(
            state=state,
            boot_count=s.boot_count,
            ts_ms=s.clock.now_ms(),
            kind=self._kind,
            firmware_version=self._settings.device.firmware_version,
            compartments=[spec_proto(c) for c in s.specs.values()],
            last_seq=s.store.counters.last_seq,
            desired_version=s.desired_version,
            outbox_full=s.store.outbox_full,
        )

    async def publish_status(self) -> None:
        """Republish the retained ONLINE status (if connected; a failure waits for the next)."""
        link = self.link
        if link is not None:
            with contextlib.suppress(LinkError):
                await link.publish_message(Kind.STATUS, self.status(ONLINE))

    async def _connect(self) -> None:
        d = self._settings.device
        async with Link(
            self._settings.broker,
            site=d.site,
            device=d.id,
            will=self.status(OFFLINE),
            dropped=self._stats.dropped_commands,
            tls_context=self._tls,
        ) as link:
            try:
                # Birth before anything else so the hub sees this boot's presence first.
                await link.publish_message(Kind.STATUS, self.status(ONLINE))
                self._stats.connects += 1
                self._backoff.reset()
                self._reported_full = self._state.store.outbox_full
                self.link = link
                self.connected.set()
                log.info(
                    "connected to %s:%d", self._settings.broker.host, self._settings.broker.port
                )
                failure = await self._serve(link)
            except asyncio.CancelledError:
                # Clean shutdown: the broker sends no will on a normal DISCONNECT (MQTT 5,
                # 3.1.2.5), so say OFFLINE ourselves, bounded in time.
                self.connected.clear()
                with contextlib.suppress(LinkError, TimeoutError):
                    async with asyncio.timeout(_OFFLINE_PUBLISH_S):
                        await link.publish_message(Kind.STATUS, self.status(OFFLINE))
                raise
            finally:
                self.link = None
                self.connected.clear()
        if failure is not None:
            raise failure

    async def _serve(self, link: Link) -> LinkError | None:
        """Run one connection's tasks; returns the link failure that ended it."""
        failure: LinkError | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._read_commands(link))
                tg.create_task(
                    self._state.outbox.pump(
                        link.publish, rate_per_s=self._settings.storage.replay_rate_per_s
                    )
                )
                tg.create_task(self._status_loop(link))
        except* LinkError as group:
            failure = LinkError(str(group.exceptions[0]))
        return failure

    async def _read_commands(self, link: Link) -> None:
        async for message in link.incoming():
            await self._commands.put(message)

    async def _status_loop(self, link: Link) -> None:
        """Republish the retained status when outbox_full changes (the hub should know)."""
        store = self._state.store
        while True:
            # Woken by the store when the flag changes: no timer per cabinet.
            await store.full_changed.wait()
            store.full_changed.clear()
            full = store.outbox_full
            if full != self._reported_full:
                await link.publish_message(Kind.STATUS, self.status(ONLINE))
                self._reported_full = full
