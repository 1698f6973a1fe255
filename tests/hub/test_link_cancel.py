"""A cancel aiomqtt swallows while the hub publishes a command (Python 3.11 ``asyncio.wait_for``)
still stops the publisher: the hub's shutdown cannot hang on it (``hub.mqtt.link``)."""

from __future__ import annotations

import asyncio
import uuid

import aiomqtt.client
import pytest

from hub.mqtt.link import MqttLink
from hub.settings.services import BrokerSettings
from lockerhub.topics import Kind, Topic
from tests.support.broker import BrokerHandle
from tests.support.racy import RacyWaitFor


async def test_a_hub_command_publish_cancelled_while_aiomqtt_swallows_it_is_cancelled(
    mosquitto: BrokerHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub's side of the same guard (``hub.mqtt.link``): a command publisher stopped at
    shutdown must stop, not carry on."""
    user, password = mosquitto.hub_credentials()
    settings = BrokerSettings(
        host=mosquitto.host,
        port=mosquitto.port,
        username=user,
        password=password,
        client_id=f"hub-cancel-{uuid.uuid4().hex[:8]}",
    )
    async with MqttLink(settings) as link:
        racy = RacyWaitFor()
        with monkeypatch.context() as patch:
            patch.setattr(aiomqtt.client.asyncio, "wait_for", racy)
            topic = Topic("site-x", "cab-x", Kind.COMMAND)
            publish = asyncio.create_task(link.publish(topic, b"x", expiry_ms=60_000))
            await racy.inside.wait()  # waiting for the PUBACK
            publish.cancel()
            await asyncio.wait([publish])
        assert publish.cancelled(), "the swallowed cancel came back as a normal PUBACK"
