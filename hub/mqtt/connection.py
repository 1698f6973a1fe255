"""The hub's broker connection with its reconnect policy (jittered exponential backoff)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

from hub.errors import BrokerError
from hub.metrics.catalogue import HubMetrics
from hub.mqtt.link import Inbound, MqttLink
from hub.settings import BrokerSettings
from lockerhub.backoff import Backoff
from lockerhub.codec import CONTENT_TYPE_PROTOBUF
from lockerhub.topics import Topic

log = logging.getLogger(__name__)

Sink = Callable[[Inbound], Awaitable[None]]


class BrokerConnection:
    """Connects on enter (once, without failing the hub), then :meth:`run` keeps it connected."""

    def __init__(
        self,
        settings: BrokerSettings,
        metrics: HubMetrics,
        *,
        on_connect: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._on_connect = on_connect
        self._link: MqttLink | None = None
        self._backoff = Backoff(settings.reconnect_min_s, settings.reconnect_max_s)

    @property
    def connected(self) -> bool:
        return self._link is not None

    async def __aenter__(self) -> Self:
        await self._connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._disconnect()

    async def _connect(self) -> bool:
        link = MqttLink(self._settings)
        try:
            await link.__aenter__()
        except BrokerError as exc:
            self._metrics.broker_connects.labels("error").inc()
            log.warning("broker: %s", exc)
            return False
        self._metrics.broker_connects.labels("ok").inc()
        self._link = link
        self._backoff.reset()
        log.info("broker: connected to %s:%d", self._settings.host, self._settings.port)
        return True

    async def _disconnect(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            await link.__aexit__(None, None, None)

    async def run(self, sink: Sink) -> None:
        """Feed each received message to ``sink``, reconnecting after losses; until cancelled."""
        while True:
            if self._link is None and not await self._connect():
                await asyncio.sleep(self._backoff.next_delay())
                continue
            assert self._link is not None
            if self._on_connect is not None:
                await self._on_connect()
            try:
                async for message in self._link.messages():
                    await sink(message)
            except BrokerError as exc:
                log.warning("broker: %s; reconnecting", exc)
            await self._disconnect()
            await asyncio.sleep(self._backoff.next_delay())

    async def publish(
        self,
        topic: Topic,
        payload: bytes,
        *,
        expiry_ms: int | None,
        content_type: str = CONTENT_TYPE_PROTOBUF,
    ) -> None:
        """Publish on the current link.

        Raises:
            BrokerError: the link is down or the publish failed.
        """
        link = self._link
        if link is None:
            raise BrokerError("the hub is not connected to the broker")
        await link.publish(topic, payload, expiry_ms=expiry_ms, content_type=content_type)
