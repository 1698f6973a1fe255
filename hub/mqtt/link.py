"""One MQTT connection of the hub (aiomqtt): subscribe, receive, publish commands.

No retries here: :class:`hub.mqtt.connection.BrokerConnection` owns the reconnect policy.
aiomqtt errors become :class:`hub.errors.BrokerError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions

from hub.errors import BrokerError
from hub.settings import BrokerSettings
from lockerhub.codec import CONTENT_TYPE_PROTOBUF
from lockerhub.mqtt import ClientOptions, ack, enable_manual_ack, make_client, properties
from lockerhub.supervise import keep_cancel
from lockerhub.topics import Kind, Topic, device_filter, shared, spec

# Bound on connect, subscribe, publish (until PUBACK) and disconnect.
_CALL_TIMEOUT_S = 10.0


def _no_ack() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Inbound:
    """A received message, reduced to what ingestion needs.

    ``ack`` sends its PUBACK: ingestion calls it only once the message is stored (or refused),
    so the broker redelivers whatever a crashed hub had not stored yet.
    """

    topic: str
    payload: bytes
    content_type: str | None
    ack: Callable[[], None] = _no_ack
    # time.perf_counter() at receipt (ingest latency).
    received_at: float = field(default_factory=time.perf_counter)


def subscriptions(share_group: str | None) -> list[tuple[str, int]]:
    """The hub's subscriptions: (filter, QoS); ``share_group=None`` for MQTT 3.1.1 (one hub)."""
    subs = [(device_filter(Kind.STATUS), spec(Kind.STATUS).qos)]
    # Retained presence is not delivered to shared subscribers (MQTT 5, 4.8.2), so status above is
    # a plain subscription; business traffic is shared so several hubs can split it.
    for kind in (Kind.EVENT, Kind.TELEMETRY, Kind.COMMAND_RESULT):
        filter_ = device_filter(kind)
        subs.append((shared(filter_, share_group) if share_group else filter_, spec(kind).qos))
    return subs


class MqttLink:
    """A connected, subscribed MQTT 5 session; an async context manager."""

    def __init__(self, settings: BrokerSettings) -> None:
        self._settings = settings
        self._v5 = settings.protocol == "5"
        self._client: aiomqtt.Client | None = None

    async def __aenter__(self) -> Self:
        s = self._settings
        client = make_client(
            ClientOptions(
                host=s.host,
                port=s.port,
                client_id=s.client_id,
                username=s.username,
                password=s.password,
                keepalive_s=s.keepalive_s,
                protocol=s.protocol,
                session_expiry_s=s.session_expiry_s,
                clean_start=s.session_expiry_s == 0,
                receive_maximum=s.receive_maximum,
            )
        )
        # Acknowledge QoS 1 only after the message is stored, instead of on receipt: what the
        # hub acknowledged is what it has (docs/hub.md, "acknowledged").
        enable_manual_ack(client)
        try:
            async with asyncio.timeout(_CALL_TIMEOUT_S):
                await client.__aenter__()
        except (aiomqtt.MqttError, TimeoutError) as exc:
            raise BrokerError(f"cannot connect to broker {s.host}:{s.port}: {exc}") from exc
        self._client = client
        try:
            await self._subscribe(client)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        subs = subscriptions(self._settings.share_group if self._v5 else None)
        try:
            async with asyncio.timeout(_CALL_TIMEOUT_S):
                if self._v5:
                    granted = await keep_cancel(
                        client.subscribe([(f, SubscribeOptions(qos=q)) for f, q in subs])
                    )
                else:
                    granted = await keep_cancel(client.subscribe(subs))
        except (aiomqtt.MqttError, TimeoutError) as exc:
            raise BrokerError(f"subscribe failed: {exc}") from exc
        for (filter_, _), code in zip(subs, granted, strict=False):
            raw: Any = getattr(code, "value", code)
            if int(raw) >= 0x80:
                raise BrokerError(f"broker refused subscription {filter_!r}: {code}")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        client, self._client = self._client, None
        if client is not None:
            # The connection may already be gone; there is nothing left to close then.
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(_CALL_TIMEOUT_S):
                    await client.__aexit__(None, None, None)

    async def messages(self) -> AsyncIterator[Inbound]:
        """Received messages until the connection drops (then BrokerError)."""
        client = self._require()
        try:
            async for message in client.messages:
                payload = message.payload
                yield Inbound(
                    topic=message.topic.value,
                    payload=bytes(payload) if isinstance(payload, bytes | bytearray) else b"",
                    content_type=getattr(message.properties, "ContentType", None),
                    ack=functools.partial(self._ack, client, message.mid, message.qos),
                )
        except aiomqtt.MqttError as exc:
            raise BrokerError(f"broker connection lost: {exc}") from exc
        raise BrokerError("broker connection closed")

    async def publish(
        self,
        topic: Topic,
        payload: bytes,
        *,
        expiry_ms: int | None = None,
        content_type: str = CONTENT_TYPE_PROTOBUF,
    ) -> None:
        """Publish with the topic kind's QoS/retain and the MQTT 5 Message Expiry Interval.

        Raises:
            BrokerError: not connected or the publish failed.
        """
        client = self._require()
        fields: dict[str, object] = {"ContentType": content_type}
        if expiry_ms is not None:
            # Message Expiry Interval (MQTT 5, 3.3.2.3.3) is in whole seconds; round up so the
            # broker never drops a command the device could still have run in time.
            fields["MessageExpiryInterval"] = max(1, math.ceil(expiry_ms / 1000))
        props = properties(PacketTypes.PUBLISH, self._v5, **fields)
        rules = topic.spec
        try:
            async with asyncio.timeout(_CALL_TIMEOUT_S):
                await keep_cancel(
                    client.publish(
                        str(topic), payload, qos=rules.qos, retain=rules.retain, properties=props
                    )
                )
        except (aiomqtt.MqttError, TimeoutError) as exc:
            raise BrokerError(f"publish to {topic.kind} of {topic.device} failed: {exc}") from exc

    def _ack(self, client: aiomqtt.Client, mid: int, qos: int) -> None:
        """PUBACK one message, on the connection it came on (message ids are per connection:
        after a reconnect the broker redelivers, and the ledger makes that a no-op)."""
        if self._client is client:
            ack(client, mid, qos)

    def _require(self) -> aiomqtt.Client:
        if self._client is None:
            raise BrokerError("not connected to the broker")
        return self._client
