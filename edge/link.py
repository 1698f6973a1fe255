"""The MQTT link to the broker: one connection as an async context manager wrapping aiomqtt.

It connects with Clean Start 0 and a finite Session Expiry (MQTT 5, 3.1.2.4 and 3.1.2.11.2) so QoS 1
commands queue at the broker during short outages, sets the retained OFFLINE last will, subscribes
to the device's own command and retained desired-state topics, publishes with the protobuf
content type (3.3.2.3.9) and decodes incoming messages at ingress. Reconnecting is the caller's
job (edge.agent); aiomqtt errors become LinkError here and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

import aiomqtt
from google.protobuf.message import Message
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.errors import LinkError
from edge.settings import BrokerSettings
from lockerhub.codec import CONTENT_TYPE_PROTOBUF, DEFAULT_MAX_PAYLOAD_BYTES, decode, encode
from lockerhub.errors import PayloadError
from lockerhub.mqtt import ClientOptions, make_client, properties
from lockerhub.supervise import keep_cancel
from lockerhub.topics import Kind, Topic, spec
from lockerhub.v1 import device_pb2

log = logging.getLogger(__name__)

_LOG_TRUNCATE = 80


def _properties(packet: int, v5: bool) -> Properties | None:
    return properties(packet, v5, ContentType=CONTENT_TYPE_PROTOBUF)


class Link:
    """One MQTT connection of a device; enter it to connect, exit it to disconnect.

    Args:
        broker: broker address, credentials and session settings.
        site, device: the device's identity (its topic subtree).
        will: the OFFLINE DeviceStatus the broker publishes if the connection dies.
        dropped: counter dict to update with dropped commands by reason (outlives the link).
        tls_context: TLS to the broker (its CA, the device certificate), or None for plain TCP.
    """

    def __init__(
        self,
        broker: BrokerSettings,
        *,
        site: str,
        device: str,
        will: device_pb2.DeviceStatus,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        dropped: dict[str, int] | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._broker = broker
        self._tls_context = tls_context
        self._v5 = broker.protocol == "5"
        self._site = site
        self._device = device
        self._will = will
        self._max_payload_bytes = max_payload_bytes
        self._client: aiomqtt.Client | None = None
        # Built once per link: paho builds its whole property table per Properties object, and
        # publishing only reads it (a fleet publishes for thousands of cabinets).
        self._publish_properties = _properties(PacketTypes.PUBLISH, self._v5)
        self._cmd_topic = str(Topic(site, device, Kind.COMMAND))
        self._desired_topic = str(Topic(site, device, Kind.DESIRED))
        # Dropped incoming messages by reason (bounded tokens: fit for metric labels).
        self.dropped: dict[str, int] = {} if dropped is None else dropped

    def topic(self, kind: Kind) -> str:
        """This device's topic of ``kind``."""
        return str(Topic(self._site, self._device, kind))

    async def __aenter__(self) -> Self:
        b = self._broker
        status = spec(Kind.STATUS)
        # Clean Start 0 with a finite Session Expiry (MQTT 5, 3.1.2.4 and 3.1.2.11.2); on 3.1.1,
        # clean_session = 0 keeps the session.
        client = make_client(
            ClientOptions(
                host=b.host,
                port=b.port,
                client_id=b.client_id or self._device,
                username=b.username,
                password=b.password,
                keepalive_s=b.keepalive_s,
                protocol=b.protocol,
                session_expiry_s=b.session_expiry_s,
                clean_start=False,
                tls_context=self._tls_context,
                will=aiomqtt.Will(
                    self.topic(Kind.STATUS),
                    encode(self._will),
                    qos=status.qos,
                    retain=status.retain,
                    properties=_properties(PacketTypes.WILLMESSAGE, self._v5),
                ),
            )
        )
        try:
            async with asyncio.timeout(b.publish_timeout_s):
                await client.__aenter__()
        except (aiomqtt.MqttError, TimeoutError) as exc:
            raise LinkError(f"cannot connect to {b.host}:{b.port}: {exc!r}") from exc
        self._client = client
        try:
            async with asyncio.timeout(b.publish_timeout_s):
                granted = await keep_cancel(
                    client.subscribe(
                        [
                            (self._cmd_topic, spec(Kind.COMMAND).qos),
                            (self._desired_topic, spec(Kind.DESIRED).qos),
                        ]
                    )
                )
        except (aiomqtt.MqttError, TimeoutError) as exc:
            await self._close()
            raise LinkError(f"cannot subscribe to commands: {exc!r}") from exc
        except asyncio.CancelledError:
            await self._close()  # connected: say goodbye instead of leaving the socket open
            raise
        codes = [code.value if isinstance(code, ReasonCode) else int(code) for code in granted]
        if any(code >= 0x80 for code in codes):
            # 0x87 Not authorized (MQTT 5, 3.9.3): the broker's ACL refused our own cmd topic.
            await self._close()
            raise LinkError(f"broker refused the subscriptions (reason codes {codes})")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            async with asyncio.timeout(self._broker.publish_timeout_s):
                await client.__aexit__(None, None, None)
        except (aiomqtt.MqttError, TimeoutError) as exc:
            log.debug("disconnect after a broken connection: %r", exc)

    @property
    def client(self) -> aiomqtt.Client:
        if self._client is None:
            raise LinkError("link is not connected")
        return self._client

    async def publish(self, kind: Kind, payload: bytes) -> None:
        """Publish on this device's ``kind`` topic with that kind's QoS and retain flag.

        For QoS 1 this returns once the broker acknowledged (PUBACK).

        Raises:
            LinkError: not connected, the publish failed or was not acknowledged in time.
        """
        rules = spec(kind)
        client = self.client
        try:
            async with asyncio.timeout(self._broker.publish_timeout_s):
                await keep_cancel(
                    client.publish(
                        self.topic(kind),
                        payload,
                        qos=rules.qos,
                        retain=rules.retain,
                        properties=self._publish_properties,
                    )
                )
        except (aiomqtt.MqttError, TimeoutError) as exc:
            raise LinkError(f"publish on {kind.value} failed: {exc!r}") from exc

    async def publish_message(self, kind: Kind, message: Message) -> None:
        """Encode ``message`` (protobuf binary) and publish it on ``kind``."""
        await self.publish(kind, encode(message))

    async def incoming(self) -> AsyncIterator[device_pb2.Command | device_pb2.DesiredState]:
        """Decoded commands and desired states, as they arrive; bad ones are logged and dropped.

        A zero-length retained publish on ``desired`` (the hub clearing it) is not a state: the
        device keeps serving from the last one it applied.

        Raises:
            LinkError: when the connection is lost.
        """
        try:
            async for msg in self.client.messages:
                message = self._decode(msg)
                if message is not None:
                    yield message
        except aiomqtt.MqttError as exc:
            raise LinkError(f"connection lost: {exc}") from exc

    def _decode(self, msg: aiomqtt.Message) -> device_pb2.Command | device_pb2.DesiredState | None:
        topic = str(msg.topic)
        if topic == self._cmd_topic:
            kind = Kind.COMMAND
        elif topic == self._desired_topic:
            kind = Kind.DESIRED
        else:
            self._drop("topic", f"message on unexpected topic {topic[:_LOG_TRUNCATE]!r}")
            return None
        payload = msg.payload
        if kind is Kind.DESIRED and not payload:
            log.info("desired state cleared at the broker; keeping the last applied state")
            return None
        if not isinstance(payload, bytes | bytearray):
            self._drop("undecodable", f"{kind.value} payload is not bytes")
            return None
        content_type = getattr(msg.properties, "ContentType", None) if msg.properties else None
        try:
            message = decode(
                kind,
                bytes(payload),
                content_type=content_type,
                # A desired state lists every reservation and code hash of the cabinet.
                max_bytes=self._max_payload_bytes * (16 if kind is Kind.DESIRED else 1),
            )
        except PayloadError as exc:
            # The message, not the payload, is logged: a payload may carry personal data.
            self._drop(exc.reason, f"{kind.value} dropped: {str(exc)[:_LOG_TRUNCATE]}")
            return None
        assert isinstance(message, device_pb2.Command | device_pb2.DesiredState)
        return message

    def _drop(self, reason: str, message: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        log.warning("%s (reason=%s)", message, reason)
