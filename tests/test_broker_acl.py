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


# --- issue 10 (3): a device must not join a shared subscription, nor subscribe outside its own
# hub-to-device topics. mosquitto's acl_file grants every SUBSCRIBE (and then drops what the read
# ACL refuses), so a device in the hub's share group made the hub lose the device's share.

DEVICE_TO_HUB = [k for k in Kind if k.value in ("status", "telemetry", "event", "cmd_result")]
HUB_TO_DEVICE = [Kind.COMMAND, Kind.DESIRED]


def forbidden_filters(site: str, own: str, other: str) -> list[str]:
    """Every filter a device must be refused: shared groups, wildcards, others' and its own
    device-to-hub topics, the broker's own trees."""
    filters = []
    for kind in Kind:
        for group in ("hub", "x", own):
            filters.append(f"$share/{group}/lockerhub/v1/+/+/{kind.value}")
            filters.append(f"$share/{group}/{Topic(site, own, kind)}")
        filters.append(f"lockerhub/v1/+/+/{kind.value}")
        filters.append(f"lockerhub/v1/{site}/+/{kind.value}")
        filters.append(str(Topic(site, other, kind)))
    filters += [str(Topic(site, own, k)) for k in DEVICE_TO_HUB]
    filters += ["#", "+/#", "lockerhub/#", "lockerhub/v1/#", f"lockerhub/v1/{site}/{own}/#"]
    filters += ["$share/hub/#", "$SYS/#", "$CONTROL/dynamic-security/v1/#"]
    return filters


async def test_device_subscribe_is_refused_outside_its_own_commands(
    mosquitto: BrokerHandle,
) -> None:
    creds = mosquitto.credentials("acl-s1", "site-1")
    mosquitto.credentials("acl-s2", "site-1")
    async with client(mosquitto, creds, "acl-s1") as dev:
        for filter_ in forbidden_filters("site-1", "acl-s1", "acl-s2"):
            codes = await dev.subscribe(filter_, qos=1)
            assert [getattr(c, "value", c) for c in codes] == [0x87], filter_
        for kind in HUB_TO_DEVICE:
            codes = await dev.subscribe(str(Topic("site-1", "acl-s1", kind)), qos=1)
            assert [getattr(c, "value", c) for c in codes] == [1], kind


@pytest.mark.parametrize("kind", DEVICE_TO_HUB + HUB_TO_DEVICE)
async def test_device_publish_reaches_the_hub_only_on_its_own_device_to_hub_topics(
    mosquitto: BrokerHandle, kind: Kind
) -> None:
    a = mosquitto.credentials("acl-p1", "site-1")
    mosquitto.credentials("acl-p2", "site-1")
    async with (
        client(mosquitto, mosquitto.hub_credentials(), f"acl-hub-p-{kind.value}") as hub,
        client(mosquitto, a, "acl-p1") as dev,
    ):
        await hub.subscribe("lockerhub/v1/site-1/+/+", qos=1)
        await dev.publish(str(Topic("site-1", "acl-p2", kind)), b"forged-other", qos=1)
        await dev.publish(str(Topic("site-1", "acl-p1", kind)), b"own", qos=1)
        await dev.publish(str(Topic("site-1", "acl-p1", Kind.EVENT)), b"end", qos=1)
        received = []
        async with asyncio.timeout(5):
            async for msg in hub.messages:
                if msg.payload in (b"forged-other", b"own", b"end"):
                    received.append(msg.payload)
                if msg.payload == b"end":
                    break
        assert received == ([b"own", b"end"] if kind in DEVICE_TO_HUB else [b"end"])


@pytest.mark.parametrize("kind", [Kind.EVENT, Kind.TELEMETRY, Kind.COMMAND_RESULT])
async def test_a_device_cannot_steal_the_hubs_shared_subscription(
    mosquitto: BrokerHandle, kind: Kind
) -> None:
    """The attack of issue 10 (3): 10 messages published, all 10 reach the hub."""
    thief = mosquitto.credentials("acl-thief", "site-1")
    sender = mosquitto.credentials("acl-sender", "site-1")
    shared = f"$share/hub/lockerhub/v1/+/+/{kind.value}"
    async with (
        client(mosquitto, mosquitto.hub_credentials(), f"acl-hub-s-{kind.value}") as hub,
        client(mosquitto, thief, "acl-thief") as bad,
        client(mosquitto, sender, "acl-sender") as dev,
    ):
        await hub.subscribe(shared, qos=1)
        await bad.subscribe(shared, qos=1)
        topic = str(Topic("site-1", "acl-sender", kind))
        for i in range(10):
            await dev.publish(topic, f"m{i}".encode(), qos=1)
        got = []
        async with asyncio.timeout(5):
            async for msg in hub.messages:
                got.append(msg.payload)
                if len(got) == 10:
                    break
        assert got == [f"m{i}".encode() for i in range(10)]


# --- issue 10 (4): a device's credentials cannot take over another client's id.


async def test_device_credentials_cannot_take_over_the_hubs_client_id(
    mosquitto: BrokerHandle,
) -> None:
    creds = mosquitto.credentials("acl-i1", "site-1")
    async with client(mosquitto, mosquitto.hub_credentials(), "acl-hub-id") as hub:
        for _ in range(3):
            with pytest.raises(aiomqtt.MqttCodeError) as refused:
                async with client(mosquitto, creds, "acl-hub-id"):
                    pass
            assert refused.value.rc == 0x87  # Not authorized (CONNACK, MQTT 5 3.2.2.2)
        # The hub's session was never taken over (aiomqtt does not reconnect on its own, so a
        # taken-over client fails here): it still subscribes and receives.
        await hub.subscribe("lockerhub/v1/site-1/acl-i1/event", qos=1)
        async with client(mosquitto, creds, "acl-i1") as dev:
            await dev.publish(str(Topic("site-1", "acl-i1", Kind.EVENT)), b"alive", qos=1)
        async with asyncio.timeout(5):
            async for msg in hub.messages:
                assert msg.payload == b"alive"
                break


async def test_device_credentials_cannot_knock_another_cabinet_offline(
    mosquitto: BrokerHandle,
) -> None:
    victim = mosquitto.credentials("acl-v1", "site-1")
    attacker = mosquitto.credentials("acl-v2", "site-1")
    status = str(Topic("site-1", "acl-v1", Kind.STATUS))
    will = aiomqtt.Will(status, b"offline", qos=1, retain=False)
    victim_client = aiomqtt.Client(
        mosquitto.host,
        mosquitto.port,
        username=victim[0],
        password=victim[1],
        identifier="acl-v1",
        protocol=aiomqtt.ProtocolVersion.V5,
        will=will,
    )
    async with (
        client(mosquitto, mosquitto.hub_credentials(), "acl-hub-v") as hub,
        victim_client as cab,
    ):
        await hub.subscribe(status, qos=1)
        await cab.subscribe(str(Topic("site-1", "acl-v1", Kind.COMMAND)), qos=1)
        with pytest.raises(aiomqtt.MqttCodeError) as refused:
            async with client(mosquitto, attacker, "acl-v1"):
                pass
        assert refused.value.rc == 0x87
        # The victim is still connected: it gets a command, and its will was never published.
        await hub.publish(str(Topic("site-1", "acl-v1", Kind.COMMAND)), b"open", qos=1)
        async with asyncio.timeout(5):
            async for msg in cab.messages:
                assert msg.payload == b"open"
                break
        await cab.publish(status, b"online", qos=1)
        async with asyncio.timeout(5):
            async for msg in hub.messages:
                assert msg.payload == b"online", "the victim's will was published"
                break
