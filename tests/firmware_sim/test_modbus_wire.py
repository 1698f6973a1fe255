"""The simulated Modbus cabinet as a third-party master sees it: raw Modbus TCP frames on a socket.

Also ``lockerhub sim modbus`` as a real process (issue 10, finding 14).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import pytest

from firmware_sim.cabinet import SimulatedCabinet
from firmware_sim.cli import modbus_layout
from firmware_sim.modbus_server import ModbusCabinetServer

BOARD_UNIT, METER_UNIT = 1, 100


def adu(transaction: int, unit: int, pdu: bytes) -> bytes:
    return struct.pack(">HHHB", transaction, 0, len(pdu) + 1, unit) + pdu


class Master:
    """A minimal Modbus TCP master over one connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, *frames: bytes) -> None:
        self.writer.write(b"".join(frames))  # one write: one TCP segment on loopback
        await self.writer.drain()

    async def receive(self) -> tuple[int, int, bytes]:
        header = await asyncio.wait_for(self.reader.readexactly(7), 10)
        transaction, protocol, length, unit = struct.unpack(">HHHB", header)
        assert protocol == 0
        return transaction, unit, await self.reader.readexactly(length - 1)

    async def request(self, unit: int, pdu: bytes, transaction: int = 1) -> bytes:
        await self.send(adu(transaction, unit, pdu))
        got_transaction, got_unit, answer = await self.receive()
        assert (got_transaction, got_unit) == (transaction, unit)
        return answer


@contextlib.asynccontextmanager
async def master(host: str, port: int) -> AsyncIterator[Master]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        yield Master(reader, writer)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


@pytest.fixture
async def cabinet() -> AsyncIterator[tuple[SimulatedCabinet, Master]]:
    sim = SimulatedCabinet(modbus_layout(3, 2))  # boards 0 (C01, C02) and 1 (C03)
    async with ModbusCabinetServer(sim, channels=2) as server, master(*server.address) as m:
        yield sim, m


async def test_fc5_with_an_illegal_value_is_exception_03_and_fires_nothing(
    cabinet: tuple[SimulatedCabinet, Master],
) -> None:
    sim, m = cabinet
    assert await m.request(BOARD_UNIT, bytes.fromhex("05 0000 1234")) == bytes.fromhex("85 03")
    assert sim.relay_pulses("C01") == 0


async def test_fc5_pulse_is_echoed_and_fires_once(
    cabinet: tuple[SimulatedCabinet, Master],
) -> None:
    sim, m = cabinet
    request = bytes.fromhex("05 0001 FF00")
    assert await m.request(BOARD_UNIT, request) == request
    assert sim.relay_pulses("C02") == 1
    off = bytes.fromhex("05 0001 0000")
    assert await m.request(BOARD_UNIT, off) == off
    assert sim.relay_pulses("C02") == 1
    # The coil is a pulse: it reads 0 again.
    assert await m.request(BOARD_UNIT, bytes.fromhex("01 0000 0002")) == bytes.fromhex("01 01 00")


@pytest.mark.parametrize(
    ("unit", "request_hex", "answer_hex"),
    [
        (BOARD_UNIT, "03 0000 0001", "83 02"),  # no holding registers in the map
        (METER_UNIT, "03 0000 0001", "83 02"),
        (BOARD_UNIT, "04 0001 0002", "84 02"),  # past the last channel
        (BOARD_UNIT, "02 0000 0005", "82 02"),  # 2n discrete inputs
        (BOARD_UNIT, "02 0000 0000", "82 03"),  # quantity 0
        (BOARD_UNIT, "05 0002 FF00", "85 02"),  # coil past the board
        (BOARD_UNIT, "0F 0000 0002 02 0300", "8F 03"),  # byte count does not match
        (BOARD_UNIT, "06 0000 0001", "86 01"),  # unsupported function
        (METER_UNIT, "04 0002 0003", "84 02"),  # 4 meter registers
        (BOARD_UNIT, "02 0000 0004", "02 01 00"),  # doors closed, no items
    ],
)
async def test_requests_outside_the_map_get_the_spec_exception(
    cabinet: tuple[SimulatedCabinet, Master], unit: int, request_hex: str, answer_hex: str
) -> None:
    _, m = cabinet
    assert await m.request(unit, bytes.fromhex(request_hex)) == bytes.fromhex(answer_hex)


async def test_an_unknown_unit_gets_no_answer(cabinet: tuple[SimulatedCabinet, Master]) -> None:
    _, m = cabinet
    # Unit 50 is neither a board nor the meter: silence, so the next answer is transaction 8's.
    await m.send(
        adu(7, 50, bytes.fromhex("02 0000 0001")), adu(8, 2, bytes.fromhex("02 0000 0001"))
    )
    assert await m.receive() == (8, 2, bytes.fromhex("02 01 00"))


async def test_two_requests_in_one_segment_are_both_answered_in_order(
    cabinet: tuple[SimulatedCabinet, Master],
) -> None:
    sim, m = cabinet
    await m.send(
        adu(1, BOARD_UNIT, bytes.fromhex("05 0000 FF00")),
        adu(2, METER_UNIT, bytes.fromhex("04 0000 0004")),
    )
    assert await m.receive() == (1, BOARD_UNIT, bytes.fromhex("05 0000 FF00"))
    transaction, unit, answer = await m.receive()
    assert (transaction, unit, answer[:2]) == (2, METER_UNIT, bytes.fromhex("04 08"))
    assert sim.relay_pulses("C01") == 1


@pytest.fixture
def modbus_process() -> Iterator[tuple[str, int]]:
    command = [
        sys.executable,
        "-c",
        "from lockerhub.cli import main; main()",
        "sim",
        "modbus",
        "--port",
        "0",
        "--compartments",
        "3",
        "--board-size",
        "2",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            found = re.search(r"on ([\d.]+):(\d+):", line)
            assert found, line
            yield found.group(1), int(found.group(2))
        finally:
            proc.terminate()
            assert proc.wait(30) == 0


async def test_sim_modbus_command_serves_a_cabinet_for_a_third_party_master(
    modbus_process: tuple[str, int],
) -> None:
    async with master(*modbus_process) as m:
        pulse = bytes.fromhex("05 0000 FF00")
        assert await m.request(BOARD_UNIT, pulse) == pulse
        answer = await m.request(METER_UNIT, bytes.fromhex("04 0000 0004"))
        assert answer[:2] == bytes.fromhex("04 08")
        power = struct.unpack(">I", answer[6:10])[0] / 10
        assert power == 18.0  # the cabinet's base load
