"""`lockerhub sim fleet`: N cabinets with their own agents and MQTT connections in one process."""

from __future__ import annotations

import asyncio
import json
import resource
import uuid
from pathlib import Path

import aiomqtt
import pytest

from demo.fleet import Fleet, FleetSpec, load_credentials, raise_fd_limit
from firmware_sim.errors import SimError
from lockerhub.codec import decode
from lockerhub.topics import Kind, Topic
from lockerhub.v1 import device_pb2
from tests.support.broker import BrokerHandle
from tests.support.processes import Proc


def _credentials(tmp_path: Path, broker: BrokerHandle, spec_ids: list[str], site: str) -> Path:
    accounts = {}
    for device in spec_ids:
        user, password = broker.credentials(device, site)
        accounts[device] = {"username": user, "password": password}
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(accounts))
    return path


async def test_fleet_connects_every_cabinet_with_its_own_account(
    tmp_path: Path, mosquitto: BrokerHandle
) -> None:
    prefix = f"fl{uuid.uuid4().hex[:6]}"
    ids = FleetSpec(cabinets=3, prefix=prefix).device_ids()
    creds = load_credentials(_credentials(tmp_path, mosquitto, ids, "fleet-site"))
    spec = FleetSpec(
        cabinets=3,
        host=mosquitto.host,
        port=mosquitto.port,
        prefix=prefix,
        data_dir=tmp_path / "data",
        credentials=creds,
        telemetry_s=0.5,
        activity_per_s=2.0,
        seed=1,
    )
    user, password = mosquitto.hub_credentials()
    online: set[str] = set()
    async with aiomqtt.Client(
        mosquitto.host, mosquitto.port, username=user, password=password
    ) as hub:
        await hub.subscribe("lockerhub/v1/fleet-site/+/status", qos=1)
        async with Fleet(spec) as fleet:
            task = asyncio.create_task(fleet.run())
            try:
                async with asyncio.timeout(20):
                    async for msg in hub.messages:
                        topic = Topic.parse(str(msg.topic))
                        if topic.kind is Kind.STATUS and topic.device.startswith(prefix):
                            assert isinstance(msg.payload, bytes)
                            status = decode(Kind.STATUS, msg.payload)
                            if status.state == device_pb2.DeviceStatus.STATE_ONLINE:
                                online.add(topic.device)
                        if len(online) == 3:
                            break
                async with asyncio.timeout(20):
                    while fleet.stats.actions < 2 or fleet.connected() < 3:
                        await asyncio.sleep(0.05)
            finally:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
    assert online == set(ids)


def test_bad_fleet_arguments_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SimError, match="cabinets"):
        FleetSpec(cabinets=0)
    with pytest.raises(SimError, match="cabinets"):
        FleetSpec(cabinets=10**9)
    with pytest.raises(SimError, match="no account"):
        FleetSpec(cabinets=2, credentials={"fleet-0001": ("u", "p")})
    assert FleetSpec(cabinets=10_000).device_ids()[-1] == "fleet-10000"
    with pytest.raises(SimError, match="cabinets"):
        FleetSpec(cabinets=10_001)
    for bad_args, key in (
        ({"storage": "memory"}, "--storage"),
        ({"storage": "shared; DROP"}, "--storage"),
        ({"connect_concurrency": 0}, "--connect-concurrency"),
        ({"connect_concurrency": 10**6}, "--connect-concurrency"),
        ({"keepalive_s": 1}, "--keepalive"),
        ({"jitter": 0.9}, "jitter"),
        ({"jitter": -0.1}, "jitter"),
    ):
        with pytest.raises(SimError, match=key):
            FleetSpec(cabinets=1, **bad_args)
    bad = tmp_path / "bad.json"
    for content in ("not json", "[1, 2]", '{"fleet-0001": {"username": 5}}'):
        bad.write_text(content)
        with pytest.raises(SimError, match="credentials file"):
            load_credentials(bad)
    bad.write_text('{"fleet-0001": {"username": "u", "password": "SECRET"}}')
    assert load_credentials(bad)["fleet-0001"] == ("u", "SECRET")
    with pytest.raises(SimError) as info:
        load_credentials(tmp_path / "missing.json")
    assert "SECRET" not in str(info.value)


async def test_fleet_cli(tmp_path: Path, mosquitto: BrokerHandle) -> None:
    prefix = f"fc{uuid.uuid4().hex[:6]}"
    ids = FleetSpec(cabinets=2, prefix=prefix).device_ids()
    creds = _credentials(tmp_path, mosquitto, ids, "fleet-site")
    proc = Proc(
        [
            "sim",
            "fleet",
            "--cabinets",
            "2",
            "--prefix",
            prefix,
            "--broker",
            f"{mosquitto.host}:{mosquitto.port}",
            "--credentials",
            str(creds),
            "--data",
            str(tmp_path / "d"),
            "--duration",
            "30",
        ]
    )
    try:
        await asyncio.to_thread(proc.wait_for, r"fleet: 2 cabinets connected")
    finally:
        rc = proc.terminate()
    assert rc == 0, proc.output()[-2000:]
    for args, message in (
        (["--cabinets", "0"], "cabinets"),
        (["--cabinets", "2", "--report", "0.01"], "--report"),
        (["--cabinets", "2", "--storage", "memory"], "invalid choice"),
        (["--cabinets", "2", "--connect-concurrency", "-1"], "--connect-concurrency"),
    ):
        bad = Proc(["sim", "fleet", *args])
        assert bad.popen.wait(30) == 2
        assert message in bad.output()


def test_the_fleet_refuses_to_start_beyond_the_descriptor_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        assert raise_fd_limit(10**6) >= soft
        return
    with pytest.raises(SimError, match=f"hard limit is {hard}"):
        raise_fd_limit(hard + 1)
    assert raise_fd_limit(min(hard, 1024)) >= min(hard, 1024)
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[1] == hard  # the hard limit is not touched
