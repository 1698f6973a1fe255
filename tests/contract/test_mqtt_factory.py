"""lockerhub.mqtt (the one client factory) and lockerhub.backoff, against a real mosquitto."""

from __future__ import annotations

import asyncio
import random
import uuid
from importlib.metadata import version

import aiomqtt
import pytest

from lockerhub.backoff import Backoff
from lockerhub.mqtt import ClientOptions, ack, enable_manual_ack, make_client
from tests.support.broker import BrokerHandle


async def test_manual_ack_reaches_paho_where_the_pin_says() -> None:
    # lockerhub.mqtt reaches paho through aiomqtt.Client._client (empicano/aiomqtt#345): when an
    # aiomqtt release moves it, this fails before a hub acknowledges on receipt.
    assert version("aiomqtt").startswith("2.5."), "re-check lockerhub.mqtt's manual-ack path"
    client = make_client(ClientOptions(host="127.0.0.1", port=1, client_id="x"))
    assert callable(client._client.manual_ack_set)
    assert callable(client._client.ack)


def test_options_refuse_an_unknown_protocol() -> None:
    with pytest.raises(ValueError, match="protocol"):
        ClientOptions(host="h", port=1, client_id="x", protocol="4")


async def test_unacknowledged_message_is_redelivered_acknowledged_is_not(
    mosquitto: BrokerHandle,
) -> None:
    user, password = mosquitto.hub_credentials()
    topic = "lockerhub/v1/s-ack/d-ack/event"
    client_id = f"hub-ack-{uuid.uuid4().hex[:6]}"

    def consumer() -> aiomqtt.Client:
        client = make_client(
            ClientOptions(
                host=mosquitto.host,
                port=mosquitto.port,
                client_id=client_id,
                username=user,
                password=password,
                session_expiry_s=300,
                clean_start=False,
            )
        )
        enable_manual_ack(client)
        return client

    async def next_message(client: aiomqtt.Client) -> aiomqtt.Message:
        async with asyncio.timeout(10):
            return await anext(aiter(client.messages))

    first = consumer()
    async with first:
        await first.subscribe(topic, qos=1)
        await first.publish(topic, b"one", qos=1)
        got = await next_message(first)
        assert got.payload == b"one"
        # not acknowledged: the broker keeps it for the session
    second = consumer()
    async with second:
        again = await next_message(second)
        assert again.payload == b"one"
        ack(second, again.mid, again.qos)
        await second.publish(topic, b"two", qos=1)
        two = await next_message(second)
        assert two.payload == b"two"
        ack(second, two.mid, two.qos)
    third = consumer()
    async with third:
        await third.publish(topic, b"three", qos=1)
        # "one" and "two" were acknowledged: the next message is the new one.
        assert (await next_message(third)).payload == b"three"
        ack(third, 0, 0)  # QoS 0 needs no acknowledgement: a no-op


def test_backoff_doubles_to_its_cap_with_half_guaranteed() -> None:
    b = Backoff(0.5, 4.0, rng=random.Random(7))
    delays = [b.next_delay() for _ in range(8)]
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    b.reset()
    assert 0.25 <= b.next_delay() <= 0.5
    assert b.attempt == 1


@pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_backoff_refuses_bad_bounds(base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(base, cap)
