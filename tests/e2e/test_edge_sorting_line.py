"""`lockerhub edge` in sorting-line mode as a real process: plan in, sorted/rejected events out."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from lockerhub.topics import Kind
from lockerhub.v1 import device_pb2
from tests.edge.conftest import SITE, FakeHub
from tests.support.broker import BrokerHandle
from tests.support.processes import Proc


async def test_sorting_line_process(tmp_path: Path, mosquitto: BrokerHandle) -> None:
    device = f"line-{int(time.time() * 1000) % 10**8}"
    user, password = mosquitto.credentials(device, SITE)
    config = tmp_path / "line.toml"
    config.write_text(
        f"""
[device]
id = "{device}"
site = "{SITE}"
kind = "sorting_line"
[broker]
host = "{mosquitto.host}"
port = {mosquitto.port}
username = "{user}"
password = "{password}"
[storage]
path = "{tmp_path / "line.db"}"
[telemetry]
interval_s = 0.5
[sorter]
chutes = ["CH01", "CH02", "CH03", "EX"]
sim_induction_rate_per_s = 20
sim_no_read_rate = 0.2
"""
    )
    async with FakeHub(mosquitto, device) as hub:
        await hub.publish_desired(
            device_pb2.DesiredState(
                version=1,
                ts_ms=int(time.time() * 1000),
                sort_plan=[
                    device_pb2.SortRule(destination="D1", chute_id="CH01"),
                    device_pb2.SortRule(destination="D2", chute_id="CH02"),
                ],
                exception_chute="EX",
            )
        )
        proc = Proc(["edge", "--config", str(config)])
        try:
            await asyncio.to_thread(proc.wait_for, r"simulated sorting line running")
            await hub.wait_event("parcel_sorted", count=3, timeout=30)
            rejected = await hub.wait_event("parcel_rejected", count=3, timeout=30)
            reasons = {e.parcel_rejected.reason for e in rejected}
            assert reasons <= {
                device_pb2.ParcelRejected.REASON_NO_READ,
                device_pb2.ParcelRejected.REASON_NO_RULE,
            }
            sample = await hub.wait(
                lambda: next((t for t in hub.of(Kind.TELEMETRY) if t.sorter.sorted >= 3), None),
                timeout=30,
            )
            assert sample.sorter.inducted >= sample.sorter.sorted + sample.sorter.no_reads
            for e in hub.events("parcel_sorted"):
                rule = {"D1": "CH01", "D2": "CH02"}[e.parcel_sorted.destination]
                assert e.parcel_sorted.chute_id == rule
        finally:
            rc = proc.terminate()
            await hub.publish_desired(None)
        assert rc == 0, proc.output()[-2000:]
