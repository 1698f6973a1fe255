"""The edge agent as a real `lockerhub edge` process: SIGKILL mid-command, and power loss.

A test-side hub (tests.edge.conftest.FakeHub) speaks the MQTT contract; the simulated hardware
keeps its state in a file (driver.sim_state_path), so relay pulses survive the process.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path

from firmware_sim.control import ControlClient
from lockerhub.v1 import common_pb2, device_pb2
from tests.edge.conftest import SITE, FakeHub, new_device_id
from tests.support.broker import BrokerHandle
from tests.support.processes import Proc

C = common_pb2
ONLINE = device_pb2.DeviceStatus.STATE_ONLINE


def write_config(tmp: Path, broker: BrokerHandle, device: str) -> Path:
    user, password = broker.credentials(device, SITE)
    path = tmp / "cabinet.toml"
    path.write_text(
        f"""
[device]
id = "{device}"
site = "{SITE}"
[broker]
host = "{broker.host}"
port = {broker.port}
username = "{user}"
password = "{password}"
keepalive_s = 5
reconnect_min_s = 0.1
reconnect_max_s = 0.5
[storage]
path = "{tmp / "cabinet.db"}"
[door]
open_confirm_ms = 500
arm_ms = 1000
[driver]
kind = "sim"
control_port = 0
sim_state_path = "{tmp / "hardware.json"}"
sim_slow_relay_s = 60
[[driver.compartments]]
size = "S"
count = 2
"""
    )
    return path


async def start_edge(config: Path) -> tuple[Proc, str, int]:
    proc = Proc(["edge", "--config", str(config)])
    m = await asyncio.to_thread(proc.wait_for, r"sim control listening on (\S+):(\d+)")
    return proc, m.group(1), int(m.group(2))


async def test_sigkill_mid_open_never_opens_twice_and_reports_interrupted(
    tmp_path: Path, mosquitto: BrokerHandle
) -> None:
    device = new_device_id()
    config = write_config(tmp_path, mosquitto, device)
    async with FakeHub(mosquitto, device) as hub:
        edge, host, port = await start_edge(config)
        try:
            await hub.wait_status(ONLINE, 1, timeout=20)
            async with ControlClient(host, port) as ctl:
                await ctl.inject_fault("slow_relay", "C01")
                command = hub.command(
                    command_id=f"open-{uuid.uuid4().hex[:8]}",
                    open_compartment=device_pb2.OpenCompartment(compartment_id="C01"),
                )
                await hub.send(command)
                async with asyncio.timeout(20):
                    while await ctl.relay_pulses("C01") < 1:
                        await asyncio.sleep(0.05)
        finally:
            edge.kill()  # in the middle of the relay pulse
        assert not hub.results(command.command_id)

        edge, host, port = await start_edge(config)
        try:
            (result,) = await hub.wait(lambda: hub.results(command.command_id), timeout=20)
            assert result.outcome == C.COMMAND_OUTCOME_INTERRUPTED
            # The hub retries the very same command: reported again, never executed again.
            await hub.send(command)
            await hub.wait(lambda: len(hub.results(command.command_id)) >= 2, timeout=20)
            assert {r.outcome for r in hub.results(command.command_id)} == {
                C.COMMAND_OUTCOME_INTERRUPTED
            }
            async with ControlClient(host, port) as ctl:
                assert await ctl.relay_pulses("C01") == 1
        finally:
            rc = edge.terminate()
        assert rc == 0, edge.output()[-2000:]


def _db(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        return db.execute(sql).fetchall()


async def test_power_loss_recovers_occupancy_and_pending_events(
    tmp_path: Path, own_mosquitto: BrokerHandle
) -> None:
    device = new_device_id()
    config = write_config(tmp_path, own_mosquitto, device)
    db_path = tmp_path / "cabinet.db"
    hub_id = f"hub-{uuid.uuid4().hex[:8]}"
    edge, host, port = await start_edge(config)
    try:
        async with FakeHub(own_mosquitto, device, identifier=hub_id, persistent=True) as hub:
            await hub.wait_status(ONLINE, 1, timeout=20)
            await hub.publish_desired(
                device_pb2.DesiredState(
                    version=1,
                    ts_ms=int(time.time() * 1000),
                    reservations=[
                        device_pb2.ReserveCompartment(parcel_id="P-7", compartment_id="C02")
                    ],
                )
            )
            await hub.wait(
                lambda: [s for s in hub.of_status() if s.desired_version == 1], timeout=20
            )
        await own_mosquitto.astop()
        async with ControlClient(host, port) as ctl:
            assert (await ctl.courier_deposit("P-7", timeout_s=10)).opened == "C02"

        def deposited_stored() -> bool:
            rows = _db(db_path, "SELECT state FROM compartments WHERE compartment_id = 'C02'")
            return rows == [("occupied",)]

        async with asyncio.timeout(20):
            while not await asyncio.to_thread(deposited_stored):
                await asyncio.sleep(0.05)
    finally:
        edge.kill()  # power cut, broker still down

    pending = await asyncio.to_thread(
        _db, db_path, "SELECT COUNT(*) FROM outbox WHERE business = 1"
    )
    assert pending[0][0] >= 3  # door opened, door closed, deposited
    edge, host, port = await start_edge(config)
    try:
        await own_mosquitto.astart()
        async with FakeHub(own_mosquitto, device, identifier=hub_id, persistent=True) as hub:
            (dep,) = await hub.wait_event("deposited", timeout=30)
            assert dep.deposited.compartment_id == "C02"
            async with asyncio.timeout(30):
                while (await asyncio.to_thread(_db, db_path, "SELECT COUNT(*) FROM outbox"))[0][0]:
                    await asyncio.sleep(0.1)
            seqs = sorted({e.seq for e in hub.events()})
            assert seqs == list(range(1, len(seqs) + 1))
            assert [s.desired_version for s in hub.of_status()][-1] == 1
    finally:
        rc = edge.terminate()
    assert rc == 0, edge.output()[-2000:]
