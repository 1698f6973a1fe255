"""The one MQTT client factory (aiomqtt over paho) for hub and edge, with what it works around.

- aiomqtt bounds its calls with ``asyncio.wait_for``, which on Python 3.11 can swallow a
  cancellation that races with completion (CPython gh-86296) and leave shutdown hung: clients are
  made with ``timeout=math.inf`` and callers bound every call with ``asyncio.timeout`` instead.
- Acknowledging a QoS 1 message only once it is stored needs paho's manual acks, which aiomqtt
  does not expose yet (empicano/aiomqtt#345, PR #346). :func:`enable_manual_ack` and :func:`ack`
  reach paho through ``aiomqtt.Client._client``; aiomqtt is pinned to the 2.5 series in
  pyproject.toml and ``tests/contract/test_mqtt_factory.py`` fails when that attribute moves.
"""

from __future__ import annotations

import math
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

PROTOCOLS = ("5", "3.1.1")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientOptions:
    """One connection's identity and session, for :func:`make_client`."""

    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30
    protocol: str = "5"
    # MQTT 5 Session Expiry Interval (3.1.2.11.2); with 3.1.1 any value > 0 keeps the session.
    session_expiry_s: int = 0
    # True: Clean Start (3.1.2.4) / clean session; False: resume the broker's session.
    clean_start: bool = True
    # MQTT 5 Receive Maximum (3.1.2.11.3): QoS 1 messages in flight to this client.
    receive_maximum: int | None = None
    will: aiomqtt.Will | None = None
    # TLS to the broker; for a device, a context from :func:`client_tls_context` with its
    # certificate (the broker takes the certificate's Common Name as username and client id,
    # so username/password stay None and client_id is the device id).
    tls_context: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f'protocol must be "5" or "3.1.1", got {self.protocol[:10]!r}')


def client_tls_context(
    ca_file: Path, cert_file: Path | None = None, key_file: Path | None = None
) -> ssl.SSLContext:
    """A TLS context that trusts only ``ca_file`` (the broker's CA, not the system store) and,
    given ``cert_file``/``key_file``, presents that client certificate (PEM files).

    Raises:
        OSError: a file cannot be read.
        ssl.SSLError: a file is not a usable certificate or key, or they do not match.
    """
    if (cert_file is None) != (key_file is None):
        raise ValueError("a client certificate needs both cert_file and key_file")
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None and key_file is not None:
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


def make_client(options: ClientOptions) -> aiomqtt.Client:
    """An unconnected aiomqtt client for ``options`` (enter it to connect)."""
    o = options
    if o.protocol == "5":
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = o.session_expiry_s
        if o.receive_maximum is not None:
            props.ReceiveMaximum = o.receive_maximum
        session: dict[str, Any] = {
            "protocol": aiomqtt.ProtocolVersion.V5,
            "clean_start": o.clean_start,
            "properties": props,
        }
    else:
        session = {"protocol": aiomqtt.ProtocolVersion.V311, "clean_session": o.clean_start}
    return aiomqtt.Client(
        o.host,
        o.port,
        username=o.username or None,
        password=o.password or None,
        identifier=o.client_id,
        keepalive=o.keepalive_s,
        timeout=math.inf,  # CPython gh-86296: see the module docstring
        will=o.will,
        tls_context=o.tls_context,
        **session,
    )


def properties(packet: int, v5: bool, **fields: object) -> Properties | None:
    """MQTT 5 properties of ``packet`` with ``fields`` set (ContentType=..., ...); None on 3.1.1."""
    if not v5:
        return None
    props = Properties(packet)  # type: ignore[no-untyped-call]
    for name, value in fields.items():
        setattr(props, name, value)
    return props


def enable_manual_ack(client: aiomqtt.Client) -> None:
    """Send PUBACKs only through :func:`ack` (call before connecting)."""
    client._client.manual_ack_set(True)


def ack(client: aiomqtt.Client, mid: int, qos: int) -> None:
    """PUBACK message ``mid`` received on ``client`` (manual-ack mode only)."""
    if qos > 0:
        client._client.ack(mid, qos)
