"""Edge test helpers: agents with sim drivers on the shared mosquitto, and a test-side fake hub."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from google.protobuf.message import Message
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.agent import EdgeAgent
from edge.settings import EdgeSettings
from lockerhub.clock import Clock, ManualClock, SystemClock
from lockerhub.codec import CONTENT_TYPE_PROTOBUF, decode, encode
from lockerhub.topics import Kind, Topic, device_subtree
from lockerhub.v1 import device_pb2
from tests.support.broker import BrokerHandle

SITE = "site-t"


def new_device_id() -> str:
    return f"cab-{uuid.uuid4().hex[:10]}"


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def settings_mapping(
    tmp_path: Path, broker: BrokerHandle, device: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A fast-timing cabinet config (3 compartments C01-C03) on the test broker."""
    username, password = broker.credentials(device, SITE)
    base: dict[str, Any] = {
        "device": {"id": device, "site": SITE},
        "broker": {
            "host": broker.host,
            "port": broker.port,
            "username": username,
            "password": password,
            "keepalive_s": 5,
            "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.3,
            "publish_timeout_s": 3.0,
        },
        "storage": {"path": str(tmp_path / f"{device}.sqlite3")},
        "telemetry": {"interval_s": 30},
        "keypad": {"max_failures": 3, "lockout_s": 60},
        "door": {"open_confirm_ms": 200, "arm_ms": 1000},
        "driver": {"compartments": [{"size": "S", "count": 2}, {"size": "M", "count": 1}]},
    }
    return _merge(base, extra or {})


def edge_settings(
    tmp_path: Path, broker: BrokerHandle, device: str, extra: dict[str, Any] | None = None
) -> EdgeSettings:
    return EdgeSettings.from_mapping(settings_mapping(tmp_path, broker, device, extra))


async def until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll ``predicate`` (state the agent changes without publishing anything) until true."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def drive(
    clock: ManualClock, predicate: Callable[[], object], *, step_ms: int = 100, timeout: float = 5
) -> None:
    """Advance ``clock`` step by step, letting the agent's loops run, until ``predicate()``."""
    async with asyncio.timeout(timeout):
        while not predicate():
            clock.advance(step_ms)
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(agent: EdgeAgent) -> AsyncIterator[EdgeAgent]:
    """Enter the agent, run it, wait for its first connection; cancel and close on exit."""
    async with agent:
        task = asyncio.create_task(agent.run())
        try:
            async with asyncio.timeout(10):
                await agent.connected.wait()
            yield agent
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class FakeHub:
    """Plays the hub for one device: receives everything it publishes, sends it commands."""

    def __init__(
        self,
        broker: BrokerHandle,
        device: str,
        *,
        site: str = SITE,
        identifier: str | None = None,
        persistent: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self.broker = broker
        self.site = site
        self.device = device
        self.clock: Clock = clock or SystemClock()
        self.received: list[tuple[Kind, Any]] = []
        self.raw: list[tuple[str, bytes]] = []
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        username, password = broker.hub_credentials()
        props = None
        if persistent:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 600
        self.client = aiomqtt.Client(
            broker.host,
            broker.port,
            username=username,
            password=password,
            identifier=identifier or f"hub-{uuid.uuid4().hex[:8]}",
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=not persistent,
            properties=props,
        )

    async def __aenter__(self) -> FakeHub:
        await self.client.__aenter__()
        await self.client.subscribe(device_subtree(self.site, self.device), qos=1)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task
        with contextlib.suppress(aiomqtt.MqttError):
            await self.client.__aexit__(None, None, None)

    async def _read(self) -> None:
        async for msg in self.client.messages:
            topic = Topic.parse(str(msg.topic))
            assert isinstance(msg.payload, bytes)
            self.raw.append((str(msg.topic), msg.payload))
            if topic.kind in (Kind.COMMAND, Kind.DESIRED):
                continue
            ct = getattr(msg.properties, "ContentType", None)
            assert ct == CONTENT_TYPE_PROTOBUF, f"content type {ct!r} on {topic.kind}"
            self.received.append((topic.kind, decode(topic.kind, msg.payload)))
            async with self._changed:
                self._changed.notify_all()

    def of(self, kind: Kind) -> list[Any]:
        return [m for k, m in self.received if k is kind]

    def of_status(self) -> list[device_pb2.DeviceStatus]:
        return self.of(Kind.STATUS)

    def events(self, body: str | None = None) -> list[device_pb2.DeviceEvent]:
        evs = self.of(Kind.EVENT)
        return [e for e in evs if body is None or e.WhichOneof("body") == body]

    async def wait(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until ``predicate()`` is truthy; return its value."""
        async with asyncio.timeout(timeout), self._changed:
            while not (value := predicate()):
                await self._changed.wait()
            return value

    async def wait_event(self, body: str, count: int = 1, timeout: float = 5.0) -> Any:
        return await self.wait(
            lambda: (evs := self.events(body)) and len(evs) >= count and evs, timeout
        )

    async def wait_status(
        self, state: int, boot_count: int, timeout: float = 5.0
    ) -> device_pb2.DeviceStatus:
        return await self.wait(  # type: ignore[no-any-return]
            lambda: next(
                (
                    s
                    for s in self.of(Kind.STATUS)
                    if s.state == state and s.boot_count == boot_count
                ),
                None,
            ),
            timeout,
        )

    async def publish_raw(
        self, payload: bytes, *, content_type: str | None = CONTENT_TYPE_PROTOBUF
    ) -> None:
        props = Properties(PacketTypes.PUBLISH)
        if content_type is not None:
            props.ContentType = content_type
        await self.client.publish(
            str(Topic(self.site, self.device, Kind.COMMAND)), payload, qos=1, properties=props
        )

    async def publish_desired(self, desired: device_pb2.DesiredState | None) -> None:
        """Publish (retained) the device's desired state; None clears it (zero-length)."""
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = CONTENT_TYPE_PROTOBUF
        await self.client.publish(
            str(Topic(self.site, self.device, Kind.DESIRED)),
            b"" if desired is None else encode(desired),
            qos=1,
            retain=True,
            properties=props,
        )

    def command(
        self, *, expires_in_ms: int = 60_000, command_id: str | None = None, **body: Message
    ) -> device_pb2.Command:
        now = self.clock.now_ms()
        return device_pb2.Command(
            command_id=command_id or uuid.uuid4().hex,
            issued_ms=now,
            expires_ms=now + expires_in_ms,
            **body,  # type: ignore[arg-type]
        )

    async def send(self, command: device_pb2.Command) -> None:
        await self.publish_raw(encode(command))

    def results(self, command_id: str) -> list[device_pb2.CommandResult]:
        return [r for r in self.of(Kind.COMMAND_RESULT) if r.command_id == command_id]

    async def call(
        self, command: device_pb2.Command, timeout: float = 5.0
    ) -> device_pb2.CommandResult:
        """Send a command and wait for its result."""
        await self.send(command)
        results = await self.wait(lambda: self.results(command.command_id), timeout)
        return results[0]  # type: ignore[no-any-return]


@pytest.fixture
def device_id() -> str:
    return new_device_id()
