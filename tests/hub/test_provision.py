"""``lockerhub devices``: per-device accounts that a real mosquitto enforces, kept in step; bad
input refused without touching the files."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from hub.broker.mosquitto import BrokerConfig, free_port, render_config
from hub.broker.provision import AccountBook, main
from lockerhub.topics import Kind, Topic
from tests.support.broker import require_mosquitto


def provision(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def creds(out: str) -> tuple[str, str]:
    user = re.search(r"username: (\S+)", out)
    password = re.search(r"password: (\S+)", out)
    assert user is not None
    assert password is not None
    return user.group(1), password.group(1)


@pytest.fixture
def broker_dir(tmp_path: Path) -> Path:
    d = tmp_path / "broker"
    d.mkdir()
    return d


@pytest.fixture
def running(broker_dir: Path) -> Iterator[tuple[str, int, subprocess.Popen[bytes]]]:
    port = free_port()
    conf = broker_dir / "mosquitto.conf"
    AccountBook(broker_dir).save()  # no accounts yet: only the admin
    conf.write_text(render_config(BrokerConfig(workdir=broker_dir), port))
    proc = subprocess.Popen([require_mosquitto(), "-c", str(conf)])
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.05)
        yield "127.0.0.1", port, proc
    finally:
        proc.terminate()
        proc.wait(10)


def client(host: str, port: int, user: str, password: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        host,
        port,
        username=user,
        password=password,
        identifier=user,  # a device may only use its own id (bound to its account)
        protocol=aiomqtt.ProtocolVersion.V5,
    )


async def test_provisioned_accounts_are_enforced(
    broker_dir: Path,
    running: tuple[str, int, subprocess.Popen[bytes]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    host, port, _ = running
    d, live = str(broker_dir), f"{host}:{port}"
    hub = creds(
        provision(capsys, "devices", "--broker-dir", d, "--broker", live, "add-hub", "hub1")[1]
    )
    code, out, _ = provision(
        capsys, "devices", "--broker-dir", d, "--broker", live, "add", "CAB-9", "--site", "S1"
    )
    assert code == 0, out
    assert "applied to the running broker" in out
    device = creds(out)
    provision(
        capsys, "devices", "--broker-dir", d, "--broker", live, "add", "CAB-8", "--site", "S1"
    )
    # Only hashes on disk, readable by the owner only.
    for name in ("accounts.json", "dynamic-security.json", "admin-password"):
        assert device[1] not in (broker_dir / name).read_text()
        assert oct((broker_dir / name).stat().st_mode & 0o777) == "0o600"

    async with client(host, port, *hub) as h, client(host, port, *device) as dev:
        await h.subscribe("lockerhub/v1/S1/+/event", qos=1)
        await dev.publish(str(Topic("S1", "CAB-8", Kind.EVENT)), b"forged", qos=1)
        await dev.publish(str(Topic("S1", "CAB-9", Kind.EVENT)), b"genuine", qos=1)
        received = []
        async with asyncio.timeout(5):
            async for msg in h.messages:
                received.append(msg.payload)
                if msg.payload == b"genuine":
                    break
        assert received == [b"genuine"]
        # And the shared subscription of the hub is not a device's to join (issue 10, 3).
        codes = await dev.subscribe("$share/hub/lockerhub/v1/+/+/event", qos=1)
        assert [getattr(c, "value", c) for c in codes] == [0x87]

    # Rotating changes the password; the old one stops working at once.
    code, out, _ = provision(
        capsys,
        "devices",
        "--broker-dir",
        d,
        "--broker",
        live,
        "add",
        "CAB-9",
        "--site",
        "S1",
        "--rotate",
    )
    out_rotated = out
    assert creds(out)[1] != device[1]
    with pytest.raises(aiomqtt.MqttError):
        async with client(host, port, *device):
            pass
    async with client(host, port, *creds(out)):
        pass
    code, out, _ = provision(capsys, "devices", "--broker-dir", d, "list")
    assert [line.split()[0] for line in out.splitlines()] == ["hub1", "CAB-8", "CAB-9"]

    # Removing an account takes effect at once too (its device role goes with it).
    rotated = creds(out_rotated)
    assert (
        provision(capsys, "devices", "--broker-dir", d, "--broker", live, "remove", "CAB-9")[0] == 0
    )
    with pytest.raises(aiomqtt.MqttError):
        async with client(host, port, *rotated):
            pass


async def test_without_broker_the_file_takes_effect_at_restart(
    broker_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = str(broker_dir)
    code, out, err = provision(capsys, "devices", "--broker-dir", d, "add", "CAB-1", "--site", "S1")
    assert code == 0
    assert "restart mosquitto" in out
    assert "drops this cabinet's birth" in err  # no --hub-config: said clearly
    port = free_port()
    conf = broker_dir / "mosquitto.conf"
    conf.write_text(render_config(BrokerConfig(workdir=broker_dir), port))
    proc = subprocess.Popen([require_mosquitto(), "-c", str(conf)])
    try:
        await asyncio.sleep(0.5)
        async with client("127.0.0.1", port, *creds(out)):
            pass
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_site_the_hub_does_not_know_is_refused(
    broker_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub_toml = tmp_path / "hub.toml"
    hub_toml.write_text('[[sites]]\nid = "S1"\nlat = 52.5\nlon = 13.4\n')
    d = str(broker_dir)
    base = ["devices", "--broker-dir", d, "add"]
    code, _, err = provision(capsys, *base, "CAB-1", "--site", "S2", "--hub-config", str(hub_toml))
    assert code == 2
    assert "knows only sites ['S1']" in err
    assert not (broker_dir / "accounts.json").exists()
    code, _, err = provision(capsys, *base, "CAB-1", "--site", "S1", "--hub-config", str(hub_toml))
    assert code == 0
    assert err == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["add", "CAB/1", "--site", "S1"],
        ["add", "CAB-1", "--site", "#"],
        ["add", "x" * 200, "--site", "S1"],
        ["add", "CAB-1", "--site", "S1"],  # exists already (without --rotate)
        ["add", "hub1", "--site", "S1", "--rotate"],  # a hub account is not a device
        ["remove", "nobody"],
    ],
)
def test_bad_requests_leave_the_files_alone(
    broker_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    d = str(broker_dir)
    assert provision(capsys, "devices", "--broker-dir", d, "add-hub", "hub1")[0] == 0
    assert provision(capsys, "devices", "--broker-dir", d, "add", "CAB-1", "--site", "S1")[0] == 0
    before = {p.name: p.read_bytes() for p in broker_dir.iterdir()}
    code, _, err = provision(capsys, "devices", "--broker-dir", d, *argv)
    assert code == 2
    assert err.startswith("error: ")
    assert {p.name: p.read_bytes() for p in broker_dir.iterdir()} == before


@pytest.mark.parametrize(
    "content",
    ["not json", "[]", '{"x": {"hash": "y:$7$..."}}', '{"a": {"hash": "a:$7$1", "site": "S"}}'],
)
def test_a_corrupt_accounts_file_is_refused(
    broker_dir: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    (broker_dir / "accounts.json").write_text(content)
    code, _, err = provision(
        capsys, "devices", "--broker-dir", str(broker_dir), "add", "C1", "--site", "S1"
    )
    assert code == 2
    assert "accounts file" in err
    assert not (broker_dir / "dynamic-security.json").exists()
