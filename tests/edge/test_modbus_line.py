"""Issue 13: the sorting line over Modbus TCP - the agent's ModbusLineDriver against the simulated
line's ModbusLineServer (real TCP, the project's own server), and raw frames against the server."""

from __future__ import annotations

import asyncio
import struct
import time
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from edge.errors import DriverError
from edge.modbus_line import ModbusLineDriver, registers_text
from edge.modbus_link import ModbusLink
from firmware_sim.modbus_line import ModbusLineServer, text_registers
from firmware_sim.sorting_line import SimulatedSortingLine
from lockerhub.driver import ChuteChanged, DropConfirmed, Inducted
from lockerhub.v1 import device_pb2
from tests.edge.conftest import FakeHub, edge_settings, running, until
from tests.support.broker import BrokerHandle
from tests.support.racy import RacyWaitFor

CHUTES = ["CH01", "CH02", "CH03", "EX"]
R = device_pb2.ParcelRejected


def test_text_registers_round_trip() -> None:
    regs = text_registers("PARCEL-123", 40)
    assert len(regs) == 20
    assert registers_text(regs) == "PARCEL-123"
    assert registers_text(text_registers("X" * 60, 40)) == "X" * 40  # the field's width


async def test_driver_reads_events_and_commands_the_diverters() -> None:
    line = SimulatedSortingLine(CHUTES, confirm_delay_s=0.01, loop_s=0.02)
    async with line, ModbusLineServer(line) as server:
        host, port = server.address
        async with ModbusLineDriver(CHUTES, host=host, port=port, poll_s=0.005) as driver:
            inputs = driver.inputs()
            await line.induct("P1", "D1")
            await line.induct("P2", "D2", no_read=True)
            first = await asyncio.wait_for(anext(inputs), 5)
            second = await asyncio.wait_for(anext(inputs), 5)
            assert first == Inducted("1", "P1", "D1", 0)
            assert second == Inducted("2", None, None, 0)
            await driver.divert("1", "CH02")
            assert await asyncio.wait_for(anext(inputs), 5) == DropConfirmed("1", "CH02")
            assert line.landed["CH02"] == ["P1"]
            await driver.recirculate("2")
            assert await asyncio.wait_for(anext(inputs), 5) == Inducted("2", None, None, 1)
            await line.set_chute_full("CH03", True)
            assert await asyncio.wait_for(anext(inputs), 5) == ChuteChanged("CH03", True)
            assert await driver.chute_full("CH03")
            for bad in (("99", "CH01"), ("x", "CH01"), ("2", "NOPE")):
                with pytest.raises(DriverError):
                    await driver.divert(*bad)
            meter = await driver.read_meter()
            assert meter.power_w > 0
        # A driver configured with other chutes than the line has refuses to start.
        with pytest.raises(DriverError, match="chutes"):
            async with ModbusLineDriver(CHUTES[:2], host=host, port=port):
                pass


async def test_a_cancel_pymodbus_swallows_is_raised_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import pymodbus.transaction.transaction as transaction

    line = SimulatedSortingLine(CHUTES)
    async with line, ModbusLineServer(line) as server:
        host, port = server.address
        link = ModbusLink(host, port, timeout_s=1.0)
        await link.connect()
        racy = RacyWaitFor()
        try:
            with monkeypatch.context() as patch:
                patch.setattr(transaction.asyncio, "wait_for", racy)
                call = asyncio.create_task(
                    link.call("read_input_registers", 42, count=1, device_id=1)
                )
                await racy.inside.wait()
                call.cancel()
                await asyncio.wait([call])
            assert call.cancelled(), "the swallowed cancel came back as a normal response"
        finally:
            link.close()


async def test_the_line_driver_stops_when_pymodbus_swallows_the_cancel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pymodbus.transaction.transaction as transaction

    line = SimulatedSortingLine(CHUTES)
    async with line, ModbusLineServer(line) as server:
        host, port = server.address
        driver = ModbusLineDriver(CHUTES, host=host, port=port, poll_s=0.001)
        await driver.__aenter__()
        racy = RacyWaitFor()
        with monkeypatch.context() as patch:
            patch.setattr(transaction.asyncio, "wait_for", racy)
            await racy.inside.wait()  # the poller is mid-request
            async with asyncio.timeout(10):
                await driver.__aexit__(None, None, None)
        assert driver.poll_errors == 0


async def _request(port: int, unit: int, pdu: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(struct.pack(">HHHB", 7, 0, len(pdu) + 1, unit) + pdu)
        await writer.drain()
        header = await asyncio.wait_for(reader.readexactly(7), 2)
        _, _, length, _ = struct.unpack(">HHHB", header)
        return await reader.readexactly(length - 1)
    finally:
        writer.close()


async def test_server_refuses_hostile_frames() -> None:
    line = SimulatedSortingLine(CHUTES)
    async with line, ModbusLineServer(line) as server:
        port = server.address[1]
        await line.induct("P1", "D1")
        await asyncio.sleep(0.01)
        head = await _request(port, 1, struct.pack(">BHH", 4, 0, 43))
        assert head[:2] == bytes([4, 86])
        assert struct.unpack(">H", head[2:4])[0] == 1
        # Acknowledging another sequence number pops nothing (03); FC6 elsewhere is 02.
        assert await _request(port, 1, struct.pack(">BHH", 6, 0, 9)) == bytes([0x86, 3])
        assert await _request(port, 1, struct.pack(">BHH", 6, 1, 1)) == bytes([0x86, 2])
        # Commands: only item+chute together; a chute past the last one; an item not on the line.
        assert await _request(port, 1, struct.pack(">BHHBH", 16, 1, 1, 2, 1)) == bytes([0x90, 2])
        bad_chute = struct.pack(">BHHBHH", 16, 1, 2, 4, 1, 9)
        assert await _request(port, 1, bad_chute) == bytes([0x90, 3])
        no_item = struct.pack(">BHHBHH", 16, 1, 2, 4, 77, 1)
        assert await _request(port, 1, no_item) == bytes([0x90, 3])
        bad_count = struct.pack(">BHHBH", 16, 1, 2, 4, 1)  # byte count says 4, 2 given
        assert await _request(port, 1, bad_count) == bytes([0x90, 3])
        # Reads outside the map, unknown functions, and the head still there after all of it.
        assert await _request(port, 1, struct.pack(">BHH", 4, 40, 10)) == bytes([0x84, 2])
        assert await _request(port, 1, struct.pack(">BHH", 4, 0, 0)) == bytes([0x84, 3])
        assert await _request(port, 1, struct.pack(">BHH", 2, 0, 5)) == bytes([0x82, 2])
        assert await _request(port, 1, bytes([43])) == bytes([0xAB, 1])
        again = await _request(port, 1, struct.pack(">BHH", 4, 0, 1))
        assert struct.unpack(">H", again[2:4])[0] == 1
        # An unknown unit id gets no answer at all.
        with pytest.raises(TimeoutError):
            await _request(port, 9, struct.pack(">BHH", 4, 0, 1))
        assert line.diverts == 0


async def test_agent_sorts_by_the_plan_over_modbus(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    line = SimulatedSortingLine(CHUTES, confirm_delay_s=0.01, loop_s=0.02)
    async with line, ModbusLineServer(line) as server:
        host, port = server.address
        settings = edge_settings(
            tmp_path,
            mosquitto,
            device_id,
            {
                "device": {"kind": "sorting_line"},
                "driver": {
                    "kind": "modbus",
                    "modbus_host": host,
                    "modbus_port": port,
                    "modbus_poll_s": 0.01,
                },
                "sorter": {"chutes": CHUTES},
            },
        )
        driver = ModbusLineDriver(CHUTES, host=host, port=port, poll_s=0.01)
        async with FakeHub(mosquitto, device_id) as hub, running(EdgeAgent(settings, driver)):
            await hub.publish_desired(
                device_pb2.DesiredState(
                    version=1,
                    ts_ms=int(time.time() * 1000),
                    sort_plan=[
                        device_pb2.SortRule(destination="D1", chute_id="CH01"),
                        device_pb2.SortRule(destination="D2", chute_id="CH02"),
                    ],
                    exception_chute="EX",
                    hold_chute="CH03",
                    sort_plan_version=3,
                    held_parcels=["P-HELD"],
                )
            )
            (applied,) = await hub.wait_event("sort_plan_applied", timeout=30)
            assert applied.sort_plan_applied.plan_version == 3
            for pid, dest in (("P1", "D1"), ("P2", "D2"), ("P3", "D1"), ("P-HELD", "D2")):
                await line.induct(pid, dest)
            await line.induct("P4", "D9")
            sorted_ = await hub.wait_event("parcel_sorted", count=3, timeout=30)
            assert {(e.parcel_sorted.parcel_id, e.parcel_sorted.chute_id) for e in sorted_} == {
                ("P1", "CH01"),
                ("P2", "CH02"),
                ("P3", "CH01"),
            }
            assert {e.parcel_sorted.plan_version for e in sorted_} == {3}
            rejected = await hub.wait_event("parcel_rejected", count=2, timeout=30)
            assert {(e.parcel_rejected.parcel_id, e.parcel_rejected.reason) for e in rejected} == {
                ("P-HELD", R.REASON_HELD),
                ("P4", R.REASON_NO_RULE),
            }
            await until(lambda: len(line.landed["CH03"]) == 1 and len(line.landed["EX"]) == 1, 30)
            assert line.landed == {
                "CH01": ["P1", "P3"],
                "CH02": ["P2"],
                "CH03": ["P-HELD"],
                "EX": ["P4"],
            }
            await hub.publish_desired(None)
