"""``lockerhub devices``: per-device accounts that a real mosquitto enforces, kept in step; bad
input refused without touching the files."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiomqtt
import pytest

from hub.broker.mosquitto import BrokerConfig, free_port, render_config
from hub.broker.provision import main
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
    (broker_dir / "passwords").touch()
    (broker_dir / "acl").touch()
    conf.write_text(render_config(BrokerConfig(workdir=broker_dir), port))
    proc = subprocess.Popen([require_mosquitto(), "-c", str(conf)])
    try:
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
        identifier=f"t-{user}",
        protocol=aiomqtt.ProtocolVersion.V5,
    )


async def connects(host: str, port: int, user: str, password: str) -> bool:
    try:
        async with client(host, port, user, password):
            return True
    except aiomqtt.MqttError:
        return False


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> None:
    """Poll ``check`` (mosquitto reloads its files asynchronously after SIGHUP)."""
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {timeout} s") from None


async def test_provisioned_accounts_are_enforced(
    broker_dir: Path,
    running: tuple[str, int, subprocess.Popen[bytes]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    host, port, proc = running
    d = str(broker_dir)
    hub = creds(provision(capsys, "devices", "--broker-dir", d, "add-hub", "hub1")[1])
    code, out, _ = provision(capsys, "devices", "--broker-dir", d, "add", "CAB-9", "--site", "S1")
    assert code == 0
    device = creds(out)
    provision(capsys, "devices", "--broker-dir", d, "add", "CAB-8", "--site", "S1")
    assert device[1] not in (broker_dir / "passwords").read_text()  # only hashes on disk
    assert oct((broker_dir / "passwords").stat().st_mode & 0o777) == "0o600"
    proc.send_signal(1)  # SIGHUP: mosquitto reloads passwords and ACLs
    await until(lambda: connects(host, port, *device), "the new account works")

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

    # Rotating changes the password; the old one stops working after a reload.
    code, out, _ = provision(
        capsys, "devices", "--broker-dir", d, "add", "CAB-9", "--site", "S1", "--rotate"
    )
    assert creds(out)[1] != device[1]
    proc.send_signal(1)

    async def refused() -> bool:
        return not await connects(host, port, *device)

    await until(refused, "the old password stops working")
    assert await connects(host, port, *creds(out))
    code, out, _ = provision(capsys, "devices", "--broker-dir", d, "list")
    assert [line.split()[0] for line in out.splitlines()] == ["hub1", "CAB-8", "CAB-9"]


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
    assert not (broker_dir / "passwords").exists()
