"""A device that speaks only the protobuf JSON mapping asks for it in its birth (``accept``) and
then reads its commands and desired state as JSON, announced with the MQTT 5 content type."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from lockerhub.codec import CONTENT_TYPE_JSON, decode, encode_json
from lockerhub.topics import Kind, Topic
from lockerhub.v1 import device_pb2, dispatch_pb2, fleet_pb2
from tests.hub.cabinet import LAYOUT, inventory_entry, status
from tests.hub.conftest import HubHarness, eventually
from tests.hub.test_flow import announcement, online

Received = tuple[str, bytes, str | None]


@contextlib.asynccontextmanager
async def json_device(
    broker: Any, site: str, device: str, inbox: list[Received]
) -> AsyncIterator[aiomqtt.Client]:
    user, password = await asyncio.to_thread(broker.credentials, device, site)
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username=user,
        password=password,
        # Dynamic security binds a device account to its own client id: the device id.
        identifier=device,
        protocol=aiomqtt.ProtocolVersion.V5,
    ) as client:
        for kind in (Kind.COMMAND, Kind.DESIRED):
            await client.subscribe(str(Topic(site, device, kind)), qos=1)

        async def read() -> None:
            async for m in client.messages:
                ct = getattr(m.properties, "ContentType", None) if m.properties else None
                inbox.append((str(m.topic), bytes(m.payload), ct))  # type: ignore[arg-type]

        reader = asyncio.create_task(read())
        try:
            yield client
        finally:
            topic = str(Topic(site, device, Kind.STATUS))
            await client.publish(topic, b"", qos=1, retain=True)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


async def publish_json(client: aiomqtt.Client, topic: str, body: bytes, retain: bool) -> None:
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = CONTENT_TYPE_JSON
    await client.publish(topic, body, qos=1, retain=retain, properties=props)


async def test_a_json_device_gets_json_commands_and_desired_state(
    hub: HubHarness, mosquitto: Any
) -> None:
    inbox: list[Received] = []
    # The operator provisions the cabinet (kind and layout) before it connects; its birth confirms.
    await hub.app.inventory.provision(
        [inventory_entry("CAB-J", hub.site, device_pb2.DEVICE_KIND_CABINET, LAYOUT)]
    )
    async with json_device(mosquitto, hub.site, "CAB-J", inbox) as client:
        birth = status(device_pb2.DeviceStatus.STATE_ONLINE, 1)
        birth.accept = CONTENT_TYPE_JSON
        topic = str(Topic(hub.site, "CAB-J", Kind.STATUS))
        await publish_json(client, topic, encode_json(birth), retain=True)
        await online(hub, "CAB-J")
        # The device can ask for JSON only in its birth: a desired state retained before it (the
        # operator's provisioning publishes one) is in the default binary format. From the birth
        # on, everything the hub sends this device is JSON.
        after_birth = len(inbox)
        await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-J", hub.site)])
        )
        open_call = hub.fleet.OpenCompartment(
            fleet_pb2.OpenCompartmentRequest(
                cabinet_id="CAB-J", compartment_id="A01", reason="json test", ttl_seconds=2
            )
        )

        def reserved() -> bool:
            for topic, payload, content_type in inbox[after_birth:]:
                if topic.endswith("/desired") and payload:
                    state = decode(Kind.DESIRED, payload, content_type=content_type)
                    assert isinstance(state, device_pb2.DesiredState)
                    if [r.parcel_id for r in state.reservations] == ["P-J"]:
                        return any(t.endswith("/cmd") for t, _, _ in inbox[after_birth:])
            return False

        await eventually(lambda: asyncio.sleep(0, reserved()))
        open_call.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await open_call

    for topic, payload, content_type in inbox[after_birth:]:
        if not payload:
            continue  # a cleared retained state
        assert content_type == CONTENT_TYPE_JSON, topic
        json.loads(payload)  # JSON text, not protobuf binary
        kind = Kind.COMMAND if topic.endswith("/cmd") else Kind.DESIRED
        decode(kind, payload, content_type=content_type)


async def test_accept_must_name_a_known_content_type(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-X") as cab:
        birth = status(device_pb2.DeviceStatus.STATE_ONLINE, 1)
        birth.accept = "text/xml"
        before = hub.dropped("invalid")
        await cab.publish(Kind.STATUS, birth.SerializeToString())
        await eventually(lambda: asyncio.sleep(0, hub.dropped("invalid") >= before + 1))
