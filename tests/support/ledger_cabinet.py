"""A test cabinet that behaves like the edge agent's outbox: each event is kept until the broker
acknowledged it (PUBACK) and re-sent, same id and seq, over a new connection when the broker went
away. ``ledger`` is what the cabinet knows it delivered: the seqs the hub must apply, once each.
Like the edge's resend window, it answers the hub's ``resend_events`` command (sent when the hub
sees a gap in a device's seqs) by publishing those events again: a broker that acknowledged an
event and then lost it (mosquitto restarted: a message published before a kept session's
subscriber is back goes to nobody) is recovered that way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from lockerhub.codec import CONTENT_TYPE_PROTOBUF, encode
from lockerhub.topics import Kind, Topic
from lockerhub.v1 import device_pb2
from tests.hub.cabinet import LAYOUT, now_ms, status


class LedgerCabinet:
    """One cabinet's MQTT 5 session, reconnecting; an async context manager."""

    def __init__(self, broker: Any, site: str, device: str) -> None:
        self.broker, self.site, self.device = broker, site, device
        self.seq = 0
        self.ledger: list[int] = []  # seqs the broker acknowledged, in order
        self.acked_at: dict[int, float] = {}  # seq -> time.monotonic() of its PUBACK
        self.reconnects = 0
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()  # one event on the wire at a time: seq order is kept
        self._sent: dict[int, bytes] = {}  # seq -> payload (the resend window: all of them)
        self._commands: asyncio.Task[None] | None = None
        self.resent = 0

    def topic(self, kind: Kind) -> str:
        return str(Topic(self.site, self.device, kind))

    async def __aenter__(self) -> LedgerCabinet:
        await self._connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._commands is not None:
            self._commands.cancel()
            await asyncio.gather(self._commands, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.publish(self.topic(Kind.STATUS), b"", qos=1, retain=True)
                await client.__aexit__(None, None, None)

    async def _connect(self) -> None:
        user, password = await asyncio.to_thread(self.broker.credentials, self.device, self.site)
        offline = status(device_pb2.DeviceStatus.STATE_OFFLINE, 1)
        while True:
            client = aiomqtt.Client(
                self.broker.host,
                self.broker.port,
                username=user,
                password=password,
                identifier=self.device,
                protocol=aiomqtt.ProtocolVersion.V5,
                will=aiomqtt.Will(self.topic(Kind.STATUS), encode(offline), qos=1, retain=True),
                timeout=5,
            )
            try:
                await client.__aenter__()
                await client.subscribe(self.topic(Kind.COMMAND), qos=1)
                await self._publish(client, Kind.STATUS, encode(status(1, 1, LAYOUT)), True)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)  # the broker is restarting
                continue
            self._client = client
            if self._commands is not None:
                self._commands.cancel()
            self._commands = asyncio.create_task(self._answer(client))
            return

    async def _answer(self, client: aiomqtt.Client) -> None:
        """Answer ``resend_events`` commands on this connection (until it drops)."""
        with contextlib.suppress(aiomqtt.MqttError):
            async for message in client.messages:
                command = device_pb2.Command.FromString(bytes(message.payload))  # type: ignore[arg-type]
                if command.WhichOneof("body") != "resend_events":
                    continue
                r = command.resend_events
                for seq in range(r.from_seq, r.to_seq + 1):
                    payload = self._sent.get(seq)
                    if payload is None:
                        continue
                    async with self._lock:
                        with contextlib.suppress(aiomqtt.MqttError):
                            await self._publish(client, Kind.EVENT, payload)
                            self.resent += 1

    async def _publish(
        self, client: aiomqtt.Client, kind: Kind, payload: bytes, retain: bool = False
    ) -> None:
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = CONTENT_TYPE_PROTOBUF
        await client.publish(self.topic(kind), payload, qos=1, retain=retain, properties=props)

    async def event(self, **body: Any) -> int:
        """Send one event until the broker has it; returns its seq."""
        async with self._lock:
            self.seq += 1
            event = device_pb2.DeviceEvent(
                event_id=uuid.uuid4().hex, seq=self.seq, ts_ms=now_ms(), **body
            )
            payload = encode(event)
            self._sent[event.seq] = payload
            while True:
                client = self._client
                try:
                    assert client is not None
                    await self._publish(client, Kind.EVENT, payload)
                    break
                except (aiomqtt.MqttError, AssertionError):
                    # Not acknowledged: maybe received, maybe not. Re-send it, same id and seq.
                    self.reconnects += 1
                    self._client = None
                    with contextlib.suppress(Exception):
                        assert client is not None
                        await client.__aexit__(None, None, None)
                    await self._connect()
            self.ledger.append(event.seq)
            self.acked_at[event.seq] = time.monotonic()
            return event.seq
