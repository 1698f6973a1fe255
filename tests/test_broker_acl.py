"""The project's broker config: authentication and per-device ACLs, for PUBLISH and SUBSCRIBE."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from lockerhub.topics import Kind, Topic
from tests.support.broker import BrokerHandle


def client(broker: BrokerHandle, creds: tuple[str, str], ident: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=creds[0],
        password=creds[1],
        identifier=ident,
        protocol=aiomqtt.ProtocolVersion.V5,
    )


async def test_wrong_password_is_refused(mosquitto: BrokerHandle) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with client(mosquitto, ("hub", "not-the-password"), "intruder"):
            pass


async def test_anonymous_is_refused(mosquitto: BrokerHandle) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="anon"):
            pass


async def test_device_cannot_publish_on_another_devices_topic(mosquitto: BrokerHandle) -> None:
    a = mosquitto.credentials("acl-a", "site-1")
    mosquitto.credentials("acl-b", "site-1")
    own = Topic("site-1", "acl-a", Kind.EVENT)
    other = Topic("site-1", "acl-b", Kind.EVENT)
    async with (
        client(mosquitto, mosquitto.hub_credentials(), "acl-hub") as hub,
        client(mosquitto, a, "acl-a") as dev,
    ):
        await hub.subscribe("lockerhub/v1/site-1/+/event", qos=1)
        await dev.publish(str(other), b"forged", qos=1)
        await dev.publish(str(own), b"genuine", qos=1)
        received = []
        async with asyncio.timeout(5):
            async for msg in hub.messages:
                received.append((str(msg.topic), msg.payload))
                if msg.payload == b"genuine":
                    break
        # mosquitto acknowledges a denied QoS 1 publish but never forwards it.
        assert received == [(str(own), b"genuine")]


async def test_device_cannot_subscribe_to_another_devices_commands(mosquitto: BrokerHandle) -> None:
    a = mosquitto.credentials("acl-c", "site-1")
    mosquitto.credentials("acl-d", "site-1")
    async with (
        client(mosquitto, mosquitto.hub_credentials(), "acl-hub2") as hub,
        client(mosquitto, a, "acl-c") as dev,
    ):
        await dev.subscribe(str(Topic("site-1", "acl-d", Kind.COMMAND)), qos=1)
        await dev.subscribe(str(Topic("site-1", "acl-c", Kind.COMMAND)), qos=1)
        await hub.publish(str(Topic("site-1", "acl-d", Kind.COMMAND)), b"for-d", qos=1)
        await hub.publish(str(Topic("site-1", "acl-c", Kind.COMMAND)), b"for-c", qos=1)
        async with asyncio.timeout(5):
            async for msg in dev.messages:
                assert msg.payload == b"for-c", "a device read another device's commands"
                break
