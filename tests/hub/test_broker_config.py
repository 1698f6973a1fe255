"""``lockerhub broker config`` writes a broker directory that mosquitto runs from as documented."""

from __future__ import annotations

import asyncio
import re
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.broker.config import main as broker_main
from hub.broker.mosquitto import free_port
from hub.broker.provision import main as devices_main
from lockerhub.mqtt import ClientOptions, make_client
from lockerhub.topics import Kind, Topic
from tests.support.broker import require_mosquitto


def run(capsys: pytest.CaptureFixture[str], fn: object, *argv: str) -> str:
    assert callable(fn)
    code = fn(list(argv))
    out = capsys.readouterr()
    assert code == 0, out.err
    return str(out.out)


@pytest.fixture
def mosquitto_from(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.terminate()
        proc.wait(10)


async def test_the_written_config_runs_and_admits_hubs_and_certified_devices(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mosquitto_from: list[subprocess.Popen[bytes]],
) -> None:
    d = tmp_path / "broker"
    port, tls_port = free_port(), free_port()
    d.mkdir()
    hub_out = run(capsys, devices_main, "devices", "--broker-dir", str(d), "add-hub", "hub-1")
    run(
        capsys,
        devices_main,
        "devices",
        "--broker-dir",
        str(d),
        "add",
        "CAB-1",
        "--site",
        "S1",
        "--cert",
    )
    out = run(
        capsys,
        broker_main,
        "broker",
        "config",
        "--broker-dir",
        str(d),
        "--port",
        str(port),
        "--tls-port",
        str(tls_port),
        "--tls-hostname",
        "127.0.0.1",
    )
    # The printed command is the documented one.
    command = re.search(r"run: (.+)", out)
    assert command is not None
    assert command.group(1) == f"mosquitto -c {d.resolve() / 'mosquitto.conf'}"
    conf = (d / "mosquitto.conf").read_text()
    for line in (
        "require_certificate true",
        "use_identity_as_username true",
        "max_packet_size",
        "max_inflight_messages",
        "persistence true",
        "allow_anonymous false",
        "plugin_opt_config_file",
    ):
        assert line in conf
    mosquitto_from.append(subprocess.Popen([require_mosquitto(), "-c", str(d / "mosquitto.conf")]))
    await asyncio.sleep(0.5)

    hub_password = re.search(r"password: (\S+)", hub_out)
    assert hub_password is not None
    ctx = ssl.create_default_context(cafile=str(d / "pki" / "ca.pem"))
    ctx.load_cert_chain(d / "pki" / "devices" / "CAB-1.pem", d / "pki" / "devices" / "CAB-1.key")
    hub = make_client(
        ClientOptions(
            host="127.0.0.1",
            port=port,
            client_id="hub-1a",
            username="hub-1",
            password=hub_password.group(1),
        )
    )
    dev = make_client(
        ClientOptions(host="127.0.0.1", port=tls_port, client_id="CAB-1", tls_context=ctx)
    )
    async with asyncio.timeout(10), hub, dev:
        await hub.subscribe("$share/hub/lockerhub/v1/+/+/event", qos=1)
        await dev.publish(str(Topic("S1", "CAB-1", Kind.EVENT)), b"hello", qos=1)
        async for msg in hub.messages:
            assert msg.payload == b"hello"
            break
