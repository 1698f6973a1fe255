"""A cancel aiomqtt swallows while the agent publishes (Python 3.11 ``asyncio.wait_for``) still
stops the publishing loop: the agent's shutdown on SIGTERM cannot hang on it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt.client
import pytest

from edge.link import Link
from lockerhub.topics import Kind, spec
from lockerhub.v1 import device_pb2
from tests.edge.conftest import edge_settings, new_device_id
from tests.support.broker import BrokerHandle
from tests.support.racy import RacyWaitFor


async def test_a_publish_cancelled_while_aiomqtt_swallows_it_is_cancelled(
    tmp_path: Path, mosquitto: BrokerHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = edge_settings(tmp_path, mosquitto, new_device_id())
    d = settings.device
    assert spec(Kind.EVENT).qos == 1  # a publish that waits for its PUBACK
    will = device_pb2.DeviceStatus()
    async with Link(settings.broker, site=d.site, device=d.id, will=will) as link:
        racy = RacyWaitFor()
        with monkeypatch.context() as patch:
            patch.setattr(aiomqtt.client.asyncio, "wait_for", racy)
            publish = asyncio.create_task(link.publish(Kind.EVENT, b"x"))
            await racy.inside.wait()  # waiting for the PUBACK
            publish.cancel()
            await asyncio.wait([publish])
        assert publish.cancelled(), "the swallowed cancel came back as a normal PUBACK"
