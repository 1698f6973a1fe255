"""A test-side cabinet: a real MQTT 5 client with a device account, publishing protobuf payloads."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub.models import Zone, device_kind_name, size_name
from hub.settings.inventory import CompartmentSettings, DeviceInventorySettings
from lockerhub.codec import CONTENT_TYPE_PROTOBUF, encode
from lockerhub.topics import Kind, Topic
from lockerhub.v1 import common_pb2, device_pb2

# Default profile: S 80x380x640, M 190x380x640, L 410x380x640, 25 kg; one chilled M.
LAYOUT = (
    ("A01", common_pb2.SIZE_CLASS_S, (80, 380, 640), common_pb2.TEMPERATURE_ZONE_AMBIENT),
    ("A02", common_pb2.SIZE_CLASS_M, (190, 380, 640), common_pb2.TEMPERATURE_ZONE_AMBIENT),
    ("A03", common_pb2.SIZE_CLASS_L, (410, 380, 640), common_pb2.TEMPERATURE_ZONE_AMBIENT),
    ("C01", common_pb2.SIZE_CLASS_M, (190, 380, 640), common_pb2.TEMPERATURE_ZONE_CHILLED),
)


def inventory_entry(
    device: str, site: str, kind: int = device_pb2.DEVICE_KIND_CABINET, layout: Any = LAYOUT
) -> DeviceInventorySettings:
    """The operator's ``[[devices]]`` entry for a test device (``layout`` as in :data:`LAYOUT`)."""
    name = device_kind_name(kind)
    return DeviceInventorySettings(
        id=device,
        site=site,
        kind=name,
        compartments=tuple(
            CompartmentSettings(
                id=cid,
                size=size_name(size),
                width_mm=w,
                height_mm=h,
                depth_mm=d,
                zone=str(Zone.from_proto(zone)),
            )
            for cid, size, (w, h, d), zone in (layout if name == "cabinet" else ())
        ),
    )


def inventory_toml(device: str, site: str, layout: Any = LAYOUT) -> str:
    """The same entry as :func:`inventory_entry` (a cabinet), as hub.toml text."""
    entry = inventory_entry(device, site, layout=layout)
    lines = ["[[devices]]", f'id = "{entry.id}"', f'site = "{entry.site}"']
    for c in entry.compartments:
        lines += [
            "[[devices.compartments]]",
            f'id = "{c.id}"',
            f'size = "{c.size}"',
            f"width_mm = {c.width_mm}",
            f"height_mm = {c.height_mm}",
            f"depth_mm = {c.depth_mm}",
            f'zone = "{c.zone}"',
        ]
    return "\n".join(lines) + "\n"


def now_ms() -> int:
    import time

    return time.time_ns() // 1_000_000


def status(
    state: int,
    boot_count: int,
    layout: Any = LAYOUT,
    kind: int = device_pb2.DEVICE_KIND_CABINET,
) -> device_pb2.DeviceStatus:
    return device_pb2.DeviceStatus(
        state=state,
        boot_count=boot_count,
        ts_ms=now_ms(),
        kind=kind,  # type: ignore[arg-type]
        firmware_version="test-1",
        compartments=[
            common_pb2.CompartmentSpec(
                compartment_id=cid,
                size=size,
                inner=common_pb2.Dimensions(width_mm=w, height_mm=h, depth_mm=d),
                max_weight_g=25_000,
                zone=zone,
            )
            for cid, size, (w, h, d), zone in (layout if state == 1 else ())
        ],
    )


class FakeCabinet:
    """Plays a cabinet's edge agent: birth/will, events with seq, command results."""

    def __init__(
        self,
        broker: Any,
        site: str,
        device: str,
        *,
        boot_count: int = 1,
        kind: int = device_pb2.DEVICE_KIND_CABINET,
        provision: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.broker, self.site, self.device = broker, site, device
        self.kind = kind
        self._provision = provision  # the operator's part, done before the device connects
        self.boot_count = boot_count
        self.seq = 0
        self.commands: asyncio.Queue[device_pb2.Command] = asyncio.Queue()
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None

    def topic(self, kind: Kind) -> str:
        return str(Topic(self.site, self.device, kind))

    async def __aenter__(self) -> FakeCabinet:
        if self._provision is not None:
            await self._provision()
        user, password = await asyncio.to_thread(self.broker.credentials, self.device, self.site)
        will = aiomqtt.Will(
            self.topic(Kind.STATUS),
            encode(status(device_pb2.DeviceStatus.STATE_OFFLINE, self.boot_count, kind=self.kind)),
            qos=1,
            retain=True,
        )
        self._client = aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            username=user,
            password=password,
            identifier=self.device,  # the broker binds a device account to its own id
            protocol=aiomqtt.ProtocolVersion.V5,
            will=will,
        )
        await self._client.__aenter__()
        await self._client.subscribe(self.topic(Kind.COMMAND), qos=1)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._client is not None
        assert self._reader is not None
        # Clear the retained status so later tests' hubs do not see this cabinet.
        await self._client.publish(self.topic(Kind.STATUS), b"", qos=1, retain=True)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._client.__aexit__(None, None, None)

    async def _read(self) -> None:
        assert self._client is not None
        async for message in self._client.messages:
            command = device_pb2.Command()
            command.ParseFromString(bytes(message.payload))  # type: ignore[arg-type]
            await self.commands.put(command)

    async def publish(
        self,
        kind: Kind,
        payload: bytes,
        *,
        content_type: str = CONTENT_TYPE_PROTOBUF,
        topic: str | None = None,
        retain: bool = False,
    ) -> None:
        assert self._client is not None
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = content_type
        await self._client.publish(
            topic or self.topic(kind), payload, qos=1, retain=retain, properties=props
        )

    async def birth(self, layout: Any = LAYOUT) -> None:
        await self.publish(
            Kind.STATUS,
            encode(
                status(device_pb2.DeviceStatus.STATE_ONLINE, self.boot_count, layout, self.kind)
            ),
            retain=True,
        )

    async def offline(self, boot_count: int) -> None:
        await self.publish(
            Kind.STATUS,
            encode(status(device_pb2.DeviceStatus.STATE_OFFLINE, boot_count, kind=self.kind)),
            retain=True,
        )

    def make_event(self, **body: Any) -> device_pb2.DeviceEvent:
        self.seq += 1
        return device_pb2.DeviceEvent(
            event_id=uuid.uuid4().hex, seq=self.seq, ts_ms=now_ms(), **body
        )

    async def send_event(self, event: device_pb2.DeviceEvent) -> None:
        await self.publish(Kind.EVENT, encode(event))

    async def event(self, **body: Any) -> device_pb2.DeviceEvent:
        event = self.make_event(**body)
        await self.send_event(event)
        return event

    async def next_command(self, timeout: float = 5.0) -> device_pb2.Command:
        return await asyncio.wait_for(self.commands.get(), timeout)

    async def result(
        self, command_id: str, outcome: int, *, relay_fired: bool = False, detail: str = ""
    ) -> None:
        result = device_pb2.CommandResult(
            command_id=command_id,
            outcome=outcome,
            ts_ms=now_ms(),
            relay_fired=relay_fired,
            detail=detail,
        )
        await self.publish(Kind.COMMAND_RESULT, encode(result))
