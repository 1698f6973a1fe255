"""``lockerhub edge`` as a process: control address line, will on SIGKILL, offline on SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from firmware_sim.control import ControlClient
from lockerhub.v1 import common_pb2, device_pb2
from tests.edge.conftest import FakeHub, settings_mapping
from tests.support.broker import BrokerHandle

ONLINE = device_pb2.DeviceStatus.STATE_ONLINE
OFFLINE = device_pb2.DeviceStatus.STATE_OFFLINE
ANNOUNCE = re.compile(r"^edge: sim control listening on (\S+):(\d+)$")


def _toml(data: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return repr(v)

    lines: list[str] = []
    for section, table in data.items():
        scalars = {k: v for k, v in table.items() if not isinstance(v, list)}
        lines.append(f"[{section}]")
        lines += [f"{k} = {value(v)}" for k, v in scalars.items()]
        for k, items in table.items():
            if isinstance(items, list):
                for item in items:
                    lines.append(f"[[{section}.{k}]]")
                    lines += [f"{ik} = {value(iv)}" for ik, iv in item.items()]
    return "\n".join(lines) + "\n"


async def _start(config: Path) -> tuple[asyncio.subprocess.Process, tuple[str, int]]:
    log = (config.parent / "edge.log").open("ab")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "demo.edge",
        "--config",
        str(config),
        stdout=subprocess.PIPE,
        stderr=log,
    )
    log.close()
    assert proc.stdout is not None
    async with asyncio.timeout(15):
        line = (await proc.stdout.readline()).decode().strip()
    match = ANNOUNCE.match(line)
    assert match, line
    return proc, (match[1], int(match[2]))


async def _stop(proc: asyncio.subprocess.Process, sig: int) -> int:
    proc.send_signal(sig)
    try:
        async with asyncio.timeout(15):
            return await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise


async def test_edge_process_presence_and_control(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    config = tmp_path / "cabinet.toml"
    config.write_text(_toml(settings_mapping(tmp_path, mosquitto, device_id)))
    async with FakeHub(mosquitto, device_id) as hub:
        proc, (host, port) = await _start(config)
        try:
            await hub.wait_status(ONLINE, 1, timeout=10)
            async with ControlClient(host, port) as control:
                await control.force_open("C02")
                (alarm,) = await hub.wait_event("alarm")
                assert alarm.alarm.kind == common_pb2.ALARM_KIND_DOOR_FORCED
                assert (await control.state())["compartments"]["C02"]["door_open"]
        finally:
            # Power loss: the broker publishes the last will, with this boot's counter.
            assert await _stop(proc, signal.SIGKILL) == -signal.SIGKILL
        await hub.wait_status(OFFLINE, 1, timeout=10)

        proc, _ = await _start(config)
        try:
            await hub.wait_status(ONLINE, 2, timeout=10)
        finally:
            assert await _stop(proc, signal.SIGTERM) == 0
        status = await hub.wait_status(OFFLINE, 2)
        assert status.last_seq == 2  # door open + forced alarm from boot 1


async def test_broken_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[device]\nid = "cab-1"\nsite = "s"\n[broker]\nport = 70000\n')
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "demo.edge",
        "--config",
        str(config),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _out, err = await proc.communicate()
    assert proc.returncode == 2
    assert err.decode().strip() == "error: broker.port: must be 1-65535, got 70000"
    assert b"Traceback" not in err
