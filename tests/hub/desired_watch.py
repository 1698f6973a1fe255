"""Test helper: follow a device's retained DesiredState topic (as the cabinet would)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import aiomqtt

from lockerhub.topics import Kind, Topic
from lockerhub.v1 import device_pb2


class DesiredWatch:
    """Collects every DesiredState published for one device (retained one first)."""

    def __init__(self, broker: Any, site: str, device: str) -> None:
        self.broker, self.topic = broker, str(Topic(site, device, Kind.DESIRED))
        self.states: list[device_pb2.DesiredState] = []
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> DesiredWatch:
        user, password = self.broker.hub_credentials()
        self._client = aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            username=user,
            password=password,
            identifier=f"watch-{uuid.uuid4().hex[:8]}",
            protocol=aiomqtt.ProtocolVersion.V5,
        )
        await self._client.__aenter__()
        await self._client.subscribe(self.topic, qos=1)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._client is not None
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._client.__aexit__(None, None, None)

    async def _read(self) -> None:
        assert self._client is not None
        async for message in self._client.messages:
            if message.payload:
                state = device_pb2.DesiredState()
                state.ParseFromString(bytes(message.payload))  # type: ignore[arg-type]
                self.states.append(state)

    @property
    def latest(self) -> device_pb2.DesiredState | None:
        return self.states[-1] if self.states else None
