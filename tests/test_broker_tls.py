"""Devices over TLS with a client certificate from the broker's CA (issue 10, item 7)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path

import aiomqtt
import pytest

from hub.broker import pki
from lockerhub.mqtt import ClientOptions, client_tls_context, make_client
from lockerhub.topics import Kind, Topic
from tests.support.broker import BrokerHandle


def tls_client(broker: BrokerHandle, client_id: str, ctx: ssl.SSLContext) -> aiomqtt.Client:
    return make_client(
        ClientOptions(host="127.0.0.1", port=broker.tls_port, client_id=client_id, tls_context=ctx)
    )


def hub_client(broker: BrokerHandle, client_id: str) -> aiomqtt.Client:
    user, password = broker.hub_credentials()
    return make_client(
        ClientOptions(
            host=broker.host,
            port=broker.port,
            client_id=client_id,
            username=user,
            password=password,
        )
    )


async def assert_refused(client: aiomqtt.Client) -> None:
    """Connecting fails; with TLS 1.3 the broker's verdict on the client certificate arrives
    after the handshake, as a closed connection, so the wait is bounded (the factory's clients
    have no timeout of their own)."""
    with pytest.raises((aiomqtt.MqttError, TimeoutError)):
        async with asyncio.timeout(5), client:
            await client.subscribe("lockerhub/v1/#")  # never reached


async def test_a_device_certificate_is_its_identity(mosquitto: BrokerHandle) -> None:
    ctx = mosquitto.device_tls_context("tls-1", "site-t")
    own = Topic("site-t", "tls-1", Kind.EVENT)
    async with hub_client(mosquitto, "tls-hub-1") as hub:
        await hub.subscribe("lockerhub/v1/site-t/+/event", qos=1)
        async with tls_client(mosquitto, "tls-1", ctx) as dev:
            await dev.publish(str(Topic("site-t", "tls-2", Kind.EVENT)), b"forged", qos=1)
            await dev.publish(str(own), b"over-tls", qos=1)
            # Its role applies: its own commands yes, the hub's shared group no.
            granted = await dev.subscribe(str(Topic("site-t", "tls-1", Kind.COMMAND)), qos=1)
            refused = await dev.subscribe("$share/hub/lockerhub/v1/+/+/event", qos=1)
            assert [getattr(c, "value", c) for c in (*granted, *refused)] == [1, 0x87]
        async with asyncio.timeout(5):
            async for msg in hub.messages:
                assert (str(msg.topic), msg.payload) == (str(own), b"over-tls")
                break


async def test_the_certificate_not_the_client_id_names_the_device(mosquitto: BrokerHandle) -> None:
    """A certificate holder asking for the hub's client id gets its own (no takeover)."""
    ctx = mosquitto.device_tls_context("tls-3", "site-t")
    async with hub_client(mosquitto, "tls-hub-3") as hub:
        async with tls_client(mosquitto, "tls-hub-3", ctx):
            pass
        await hub.subscribe("lockerhub/v1/site-t/tls-3/event", qos=1)  # still connected


async def test_no_certificate_is_refused(mosquitto: BrokerHandle) -> None:
    ctx = client_tls_context(mosquitto.ca_file)
    await assert_refused(tls_client(mosquitto, "tls-anon", ctx))


async def test_a_certificate_from_another_ca_is_refused(
    mosquitto: BrokerHandle, tmp_path: Path
) -> None:
    mosquitto.device_tls_context("tls-4", "site-t")  # the account exists
    other = pki.Pki(tmp_path / "other-ca")
    pki.ensure_ca(other, name="not the broker's CA")
    cert, key = pki.issue_device(other, "tls-4")
    ctx = client_tls_context(mosquitto.ca_file, cert, key)
    await assert_refused(tls_client(mosquitto, "tls-4", ctx))


async def test_a_certificate_only_device_has_no_password_login(mosquitto: BrokerHandle) -> None:
    mosquitto.device_tls_context("tls-5", "site-t")
    for password in ("", "guess"):
        options = ClientOptions(
            host=mosquitto.host,
            port=mosquitto.port,
            client_id="tls-5",
            username="tls-5",
            password=password,
        )
        await assert_refused(make_client(options))


async def test_the_edge_agent_connects_with_its_certificate(
    mosquitto: BrokerHandle, tmp_path: Path
) -> None:
    """An edge agent configured with `[broker] tls_*` files connects as its certificate's device:
    the hub sees its birth on the device's own status topic."""
    from edge.agent import EdgeAgent
    from edge.settings import EdgeSettings
    from firmware_sim.cabinet import SimulatedCabinet
    from lockerhub.codec import decode
    from lockerhub.v1 import device_pb2

    mosquitto.device_tls_context("tls-edge", "site-t")  # provisions the account and certificate
    cert, key = mosquitto.broker.issue_device_certificate("tls-edge")
    settings = EdgeSettings.from_mapping(
        {
            "device": {"id": "tls-edge", "site": "site-t"},
            "broker": {
                "host": "127.0.0.1",
                "port": mosquitto.tls_port,
                "tls_ca_file": str(mosquitto.ca_file),
                "tls_cert_file": str(cert),
                "tls_key_file": str(key),
                "publish_timeout_s": 5.0,
            },
            "storage": {"path": str(tmp_path / "tls-edge.sqlite3")},
            "driver": {"compartments": [{"size": "S", "count": 1}]},
        }
    )
    status_topic = str(Topic("site-t", "tls-edge", Kind.STATUS))
    async with hub_client(mosquitto, "tls-hub-edge") as hub:
        await hub.subscribe(status_topic, qos=1)
        sim = SimulatedCabinet(settings.driver.compartment_specs())
        async with EdgeAgent(settings, sim) as agent:
            task = asyncio.create_task(agent.run())
            try:
                async with asyncio.timeout(10):
                    async for msg in hub.messages:
                        status = decode(Kind.STATUS, bytes(msg.payload))
                        assert isinstance(status, device_pb2.DeviceStatus)
                        if status.state == device_pb2.DeviceStatus.STATE_ONLINE:
                            break
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def test_edge_tls_settings_are_checked_when_loaded(tmp_path: Path) -> None:
    from edge.errors import ConfigError
    from edge.settings import EdgeSettings

    base = {"device": {"id": "d", "site": "s"}}
    with pytest.raises(ConfigError, match=r"broker\.tls_cert_file"):
        EdgeSettings.from_mapping({**base, "broker": {"tls_cert_file": "c.pem"}})
    with pytest.raises(ConfigError, match=r"broker\.tls_ca_file"):
        EdgeSettings.from_mapping(
            {**base, "broker": {"tls_cert_file": "c.pem", "tls_key_file": "k.pem"}}
        )
    broken = EdgeSettings.from_mapping(
        {**base, "broker": {"tls_ca_file": str(tmp_path / "missing-ca.pem")}}
    )
    with pytest.raises(ConfigError, match=r"broker\.tls_ca_file: cannot load"):
        broken.broker.tls_context()
