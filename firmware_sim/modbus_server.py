"""A simulated cabinet served as Modbus TCP lock/input boards and an energy meter.

The register map is the one ``edge.modbus.ModbusDriver`` reads (docs/edge.md): one Modbus device
per lock board (unit id = board + 1) and the meter at ``meter_unit``. Every request is answered
from the live ``SimulatedCabinet``, so faults injected there (jam, broken sensors, dead board) show
on the wire: a dead board answers exception 04 (SERVER DEVICE FAILURE).

The server is a small Modbus TCP implementation of its own (MODBUS Application Protocol v1.1b3,
Messaging on TCP/IP Implementation Guide v1.0b), strict where a master relies on it: requests are
read as a stream (several in one TCP segment are all answered, in order); FC5 accepts only
``FF00``/``0000`` (else exception 03) and echoes the request; addresses outside the map answer
exception 02 (there are no holding registers); a unit id that is neither a board nor the meter
gets no answer at all, as a device absent from a serial line behind a gateway: the master times
out and retries instead of reading "device failure" and declaring a live board dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from types import TracebackType
from typing import Self

from firmware_sim.cabinet import Fault, SimulatedCabinet
from firmware_sim.errors import SimError
from lockerhub.driver import DriverError

# Register map (also in docs/edge.md).
CHANNELS = 16  # relay/sensor channels per lock board (default n)
# Discrete inputs 0..n-1: door open; n..2n-1: item present. Coils 0..n-1: relay pulse.
# Input registers 0..n-1: temperature in 0.1 C (int16).
NO_PROBE = 0x8000  # input register value of a channel without a temperature probe
DEFAULT_METER_UNIT = 100
METER_REGISTERS = 4  # energy (0.1 Wh, uint32), power (0.1 W, uint32), high word first

FC_READ_COILS, FC_READ_DI, FC_READ_HR, FC_READ_IR = 1, 2, 3, 4
FC_WRITE_COIL, FC_WRITE_COILS = 5, 15
# Exception codes (Application Protocol section 7).
ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE, DEVICE_FAILURE = 1, 2, 3, 4
_BOARD_FUNCTIONS = (
    FC_READ_COILS,
    FC_READ_DI,
    FC_READ_HR,
    FC_READ_IR,
    FC_WRITE_COIL,
    FC_WRITE_COILS,
)
_COIL_ON, _COIL_OFF = 0xFF00, 0x0000
_MAX_BITS, _MAX_REGISTERS, _MAX_WRITE_BITS = 2000, 125, 1968  # per request (section 6)
_MBAP = struct.Struct(">HHHB")  # transaction, protocol (0), length (unit + PDU), unit
_MAX_PDU = 253


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _pack_bits(bits: list[bool]) -> bytes:
    out = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def _exception(function: int, code: int) -> bytes:
    return bytes([function | 0x80, code])


class ModbusTcpServer:
    """Modbus TCP on ``host:port`` (port 0: a free one, see :attr:`address`): connections and
    MBAP framing; a subclass answers each request PDU in :meth:`handle`."""

    #: What a listen failure says this server is.
    _what = "modbus server"

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> tuple[str, int]:
        return self._host, self._port

    async def __aenter__(self) -> Self:
        try:
            self._server = await asyncio.start_server(self._client, self._host, self._port)
        except OSError as exc:
            raise SimError(
                f"{self._what} cannot listen on {self._host}:{self._port}: {exc}"
            ) from exc
        self._port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        # Close the connections first: their handlers end on EOF instead of being cancelled
        # (asyncio logs an error for a cancelled client-connected handler on Python 3.11).
        for writer in list(self._writers):
            writer.close()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=1.0)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if server is not None:
            await server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            while True:
                header = await reader.readexactly(_MBAP.size)
                transaction, protocol, length, unit = _MBAP.unpack(header)
                if protocol != 0 or not 2 <= length <= _MAX_PDU + 1:
                    return  # not Modbus: close, as the TCP guide (4.4.1.3) allows
                pdu = await reader.readexactly(length - 1)
                answer = await self.handle(unit, pdu)
                if answer is None:
                    continue
                writer.write(_MBAP.pack(transaction, 0, len(answer) + 1, unit) + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()

    async def handle(self, unit: int, pdu: bytes) -> bytes | None:
        """The response PDU for a request PDU to ``unit``; None: no answer (unknown unit)."""
        raise NotImplementedError


class ModbusCabinetServer(ModbusTcpServer):
    """Serve ``sim`` over Modbus TCP on ``host:port`` (port 0: a free one, see :attr:`address`)."""

    def __init__(
        self,
        sim: SimulatedCabinet,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        meter_unit: int = DEFAULT_METER_UNIT,
        channels: int = CHANNELS,
    ) -> None:
        super().__init__(host, port)
        self._sim = sim
        self._channels = channels
        self._meter_unit = meter_unit
        self._boards: dict[int, list[str]] = {}
        for spec in sim.compartments():
            self._boards.setdefault(spec.board, []).append(spec.compartment_id)
        if any(len(c) > channels for c in self._boards.values()):
            raise SimError(f"at most {channels} compartments per board")
        if not 1 <= meter_unit <= 247 or meter_unit in (b + 1 for b in self._boards):
            raise SimError("meter_unit must be 1-247 and not a board's unit id")
        if any(not 0 <= b <= 246 for b in self._boards):
            raise SimError("boards are 0-246 (unit ids 1-247)")

    async def handle(self, unit: int, pdu: bytes) -> bytes | None:
        """The response PDU for a request PDU to ``unit``; None: no answer (unknown unit)."""
        if unit == self._meter_unit:
            return await self._meter(pdu)
        if unit - 1 in self._boards:
            return await self._board(unit - 1, pdu)
        return None

    async def _board(self, board: int, pdu: bytes) -> bytes:
        function, data = pdu[0], pdu[1:]
        cids = self._boards[board]
        n = self._channels
        if function not in _BOARD_FUNCTIONS:
            return _exception(function, ILLEGAL_FUNCTION)
        if function == FC_READ_HR:
            return _exception(function, ILLEGAL_ADDRESS)  # the map has no holding registers
        comps = [self._sim.state()["compartments"][c] for c in cids]
        if any(Fault.DEAD_BOARD.value in c["faults"] for c in comps):
            return _exception(function, DEVICE_FAILURE)
        try:
            if function == FC_WRITE_COIL:
                return await self._write_coil(function, data, cids)
            if function == FC_WRITE_COILS:
                return await self._write_coils(function, data, cids)
            if len(data) != 4:
                return _exception(function, ILLEGAL_VALUE)
            address, count = struct.unpack(">HH", data)
            limit, size = (_MAX_REGISTERS, n) if function == FC_READ_IR else (_MAX_BITS, n)
            if function == FC_READ_DI:
                size = 2 * n
            if not 1 <= count <= limit:
                return _exception(function, ILLEGAL_VALUE)
            if address + count > size:
                return _exception(function, ILLEGAL_ADDRESS)
            if function == FC_READ_COILS:  # a pulse, not a latch: coils read 0
                body = _pack_bits([False] * count)
                return bytes([function, len(body)]) + body
            if function == FC_READ_DI:
                doors = [bool(c["door_open"]) for c in comps]
                items = [await self._sim.read_item(cid) for cid in cids]
                bits = (doors + [False] * n)[:n] + (items + [False] * n)[:n]
                body = _pack_bits(bits[address : address + count])
                return bytes([function, len(body)]) + body
            temps = []
            for cid in cids:
                t = await self._sim.read_temperature(cid)
                temps.append(NO_PROBE if t is None else round(t * 10) & 0xFFFF)
            regs = (temps + [NO_PROBE] * n)[address : address + count]
            return bytes([function, 2 * count]) + struct.pack(f">{count}H", *regs)
        except DriverError:
            return _exception(function, DEVICE_FAILURE)

    async def _write_coil(self, function: int, data: bytes, cids: list[str]) -> bytes:
        if len(data) != 4:
            return _exception(function, ILLEGAL_VALUE)
        address, value = struct.unpack(">HH", data)
        if value not in (_COIL_ON, _COIL_OFF):
            return _exception(function, ILLEGAL_VALUE)  # section 6.5: FF00 or 0000 only
        if address >= self._channels:
            return _exception(function, ILLEGAL_ADDRESS)
        if value == _COIL_ON and address < len(cids):
            await self._sim.fire_relay(cids[address])
        # The normal response echoes the request (section 6.5), though the coil reads 0 again.
        return bytes([function]) + data

    async def _write_coils(self, function: int, data: bytes, cids: list[str]) -> bytes:
        if len(data) < 5:
            return _exception(function, ILLEGAL_VALUE)
        address, count, nbytes = struct.unpack(">HHB", data[:5])
        values = data[5:]
        if not 1 <= count <= _MAX_WRITE_BITS or nbytes != (count + 7) // 8 or len(values) != nbytes:
            return _exception(function, ILLEGAL_VALUE)
        if address + count > self._channels:
            return _exception(function, ILLEGAL_ADDRESS)
        for i in range(count):
            channel = address + i
            if values[i // 8] >> (i % 8) & 1 and channel < len(cids):
                await self._sim.fire_relay(cids[channel])
        return bytes([function]) + data[:4]

    async def _meter(self, pdu: bytes) -> bytes:
        function, data = pdu[0], pdu[1:]
        if function == FC_READ_HR:
            return _exception(function, ILLEGAL_ADDRESS)
        if function != FC_READ_IR:
            return _exception(function, ILLEGAL_FUNCTION)
        if len(data) != 4:
            return _exception(function, ILLEGAL_VALUE)
        address, count = struct.unpack(">HH", data)
        if not 1 <= count <= _MAX_REGISTERS:
            return _exception(function, ILLEGAL_VALUE)
        if address + count > METER_REGISTERS:
            return _exception(function, ILLEGAL_ADDRESS)
        try:
            meter = await self._sim.read_meter()
        except DriverError:
            return _exception(function, DEVICE_FAILURE)
        energy = round(meter.energy_wh * 10) & 0xFFFFFFFF
        power = round(meter.power_w * 10) & 0xFFFFFFFF
        regs = [energy >> 16, energy & 0xFFFF, power >> 16, power & 0xFFFF][
            address : address + count
        ]
        return bytes([function, 2 * count]) + struct.pack(f">{count}H", *regs)
