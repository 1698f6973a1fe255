"""`make run` = `lockerhub demo`: the platform comes up, parcels flow, Ctrl-C stops it cleanly."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import grpc
import pytest

from lockerhub.v1 import common_pb2, dispatch_pb2, dispatch_pb2_grpc
from tests.support.processes import Proc, lockerhub_exe


@pytest.mark.parametrize("broker", ["mosquitto", "embedded"])
async def test_demo_runs_parcels_end_to_end_and_stops_on_ctrl_c(
    tmp_path: Path, broker: str
) -> None:
    demo = Proc(
        [
            "demo",
            "--broker",
            broker,
            "--cabinets",
            "3",
            "--workdir",
            str(tmp_path),
            "--grpc-port",
            "0",
            "--metrics-port",
            "0",
            "--traffic-every",
            "0.3",
        ]
    )
    try:
        grpc_addr = (await asyncio.to_thread(demo.wait_for, r"gRPC\s+(\S+)")).group(1)
        await asyncio.to_thread(demo.wait_for, r"Ctrl-C stops everything")
        async with grpc.aio.insecure_channel(grpc_addr) as channel:
            dispatch = dispatch_pb2_grpc.DispatchServiceStub(channel)
            async with asyncio.timeout(60):
                while True:
                    listed = await dispatch.ListParcels(
                        dispatch_pb2.ListParcelsRequest(state=common_pb2.PARCEL_STATE_PICKED_UP)
                    )
                    if listed.parcels:
                        break
                    await asyncio.sleep(0.5)
        # A newcomer's first command from the banner works against it.
        ops = await asyncio.to_thread(
            subprocess.run,
            [lockerhub_exe(), "ops", "--target", grpc_addr, "cabinets"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert ops.returncode == 0, ops.stderr
        assert "cab-01" in ops.stdout
        assert "cab-03" in ops.stdout
    finally:
        rc = demo.terminate(sig=signal.SIGINT)
    out = demo.output()
    assert rc == 0, out[-3000:]
    assert "demo stopped." in out
    assert "Traceback" not in out, out[-3000:]
    assert " ERROR " not in out, out[-3000:]
