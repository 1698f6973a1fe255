"""A simulated sorting line served over Modbus TCP: induction scanner, diverters, chute sensors.

The register map is the one ``edge.modbus_line.ModbusLineDriver`` drives (docs/edge.md, "Sorting
line register map"): the line controller is one Modbus device (unit ``line_unit``) with an event
queue in input registers (inductions and drop confirmations, acknowledged one by one through
holding register 0), a divert command in holding registers 1-2 (written together, FC16), and the
chute-full sensors as discrete inputs; the meter is a second device, as on a cabinet. Requests are
answered from the live ``SimulatedSortingLine``; protocol strictness follows
``firmware_sim.modbus_server`` (exception 01/02/03, unknown unit ids unanswered).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import struct
import time
from types import TracebackType
from typing import Self

from firmware_sim.errors import SimError
from firmware_sim.modbus_server import (
    DEFAULT_METER_UNIT,
    FC_READ_DI,
    FC_READ_HR,
    FC_READ_IR,
    ILLEGAL_ADDRESS,
    ILLEGAL_FUNCTION,
    ILLEGAL_VALUE,
    METER_REGISTERS,
    ModbusTcpServer,
    _exception,
    _pack_bits,
)
from firmware_sim.sorting_line import SimulatedSortingLine
from lockerhub.driver import ChuteChanged, DriverError, DropConfirmed, Inducted

# Register map (also in docs/edge.md).
DEFAULT_LINE_UNIT = 1
EVENT_REGISTERS = 43  # IR 0..42
PARCEL_CHARS, DESTINATION_CHARS = 40, 32  # IR 5..24 and 25..40, ASCII, NUL padded
IR_DEPTH, IR_CHUTES = 41, 42
EVENT_INDUCTED, EVENT_CONFIRMED = 1, 2
FLAG_NO_READ = 1
HR_ACK, HR_ITEM, HR_CHUTE = 0, 1, 2
HOLDING_REGISTERS = 3
RECIRCULATE = 0
FC_WRITE_REGISTER, FC_WRITE_REGISTERS = 6, 16
_QUEUE = 4096


def text_registers(text: str, chars: int) -> list[int]:
    """``text`` as ASCII in ``chars // 2`` registers, two characters each, high byte first."""
    raw = text.encode("ascii", "replace")[:chars].ljust(chars, b"\0")
    return list(struct.unpack(f">{chars // 2}H", raw))


def item_number(item_id: str) -> int:
    return int(item_id.removeprefix("T")) & 0xFFFF


class ModbusLineServer(ModbusTcpServer):
    """Serve ``line`` over Modbus TCP on ``host:port`` (port 0: a free one, see :attr:`address`).

    ``decision_latencies_s`` collects, per divert or recirculate command, the time since the
    line queued the induction it answers (what a benchmark of the line's controller measures).
    """

    def __init__(
        self,
        line: SimulatedSortingLine,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        line_unit: int = DEFAULT_LINE_UNIT,
        meter_unit: int = DEFAULT_METER_UNIT,
    ) -> None:
        if not 1 <= line_unit <= 247 or not 1 <= meter_unit <= 247 or line_unit == meter_unit:
            raise SimError("line_unit and meter_unit must be distinct unit ids 1-247")
        super().__init__(host, port)
        self._line = line
        self._chutes = tuple(line.chutes())
        self._line_unit, self._meter_unit = line_unit, meter_unit
        self._events: collections.deque[tuple[int, list[int]]] = collections.deque()
        self._seq = 0
        self._inducted_at: dict[int, float] = {}
        self._pump_task: asyncio.Task[None] | None = None
        self.events_dropped = 0
        self.decision_latencies_s: list[float] = []

    _what = "modbus line"

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self._pump_task = asyncio.create_task(self._pump(), name="modbus-line-pump")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pump, self._pump_task = self._pump_task, None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        await super().__aexit__(exc_type, exc, tb)

    async def _pump(self) -> None:
        """Line inputs -> the event queue the master reads (chute sensors are read directly)."""
        async for event in self._line.inputs():
            if isinstance(event, ChuteChanged):
                continue
            if len(self._events) >= _QUEUE:
                self.events_dropped += 1
                continue
            self._seq = self._seq % 0xFFFF + 1
            if isinstance(event, Inducted):
                n = item_number(event.item_id)
                self._inducted_at[n] = time.perf_counter()
                regs = [
                    self._seq,
                    EVENT_INDUCTED,
                    n,
                    event.round,
                    FLAG_NO_READ if event.parcel_id is None else 0,
                    *text_registers(event.parcel_id or "", PARCEL_CHARS),
                    *text_registers(event.destination or "", DESTINATION_CHARS),
                ]
            elif isinstance(event, DropConfirmed):
                regs = [
                    self._seq,
                    EVENT_CONFIRMED,
                    item_number(event.item_id),
                    self._chutes.index(event.chute_id) + 1,
                    0,
                    *[0] * ((PARCEL_CHARS + DESTINATION_CHARS) // 2),
                ]
            else:
                continue
            self._events.append((self._seq, regs))

    async def handle(self, unit: int, pdu: bytes) -> bytes | None:
        """The response PDU for a request PDU to ``unit``; None: no answer (unknown unit)."""
        if not pdu:
            return None
        if unit == self._meter_unit:
            return await self._meter(pdu)
        if unit == self._line_unit:
            return await self._controller(pdu[0], pdu[1:])
        return None

    def _input_registers(self) -> list[int]:
        head = self._events[0][1] if self._events else [0] * (IR_DEPTH)
        return [*head, len(self._events), len(self._chutes)]

    async def _controller(self, function: int, data: bytes) -> bytes:
        if function in (FC_READ_IR, FC_READ_DI, FC_READ_HR):
            if len(data) != 4:
                return _exception(function, ILLEGAL_VALUE)
            address, count = struct.unpack(">HH", data)
            size = {FC_READ_IR: EVENT_REGISTERS, FC_READ_DI: len(self._chutes)}.get(
                function, HOLDING_REGISTERS
            )
            if not 1 <= count <= (2000 if function == FC_READ_DI else 125):
                return _exception(function, ILLEGAL_VALUE)
            if address + count > size:
                return _exception(function, ILLEGAL_ADDRESS)
            if function == FC_READ_DI:
                full = [await self._line.chute_full(c) for c in self._chutes]
                body = _pack_bits(full[address : address + count])
                return bytes([function, len(body)]) + body
            regs = self._input_registers() if function == FC_READ_IR else [0] * HOLDING_REGISTERS
            regs = regs[address : address + count]
            return bytes([function, 2 * count]) + struct.pack(f">{count}H", *regs)
        if function == FC_WRITE_REGISTER:
            if len(data) != 4:
                return _exception(function, ILLEGAL_VALUE)
            address, value = struct.unpack(">HH", data)
            if address != HR_ACK:
                return _exception(function, ILLEGAL_ADDRESS)  # the command is written with FC16
            if not self._events or self._events[0][0] != value:
                return _exception(function, ILLEGAL_VALUE)  # not the head: nothing popped
            self._events.popleft()
            return bytes([function]) + data
        if function == FC_WRITE_REGISTERS:
            return await self._command(function, data)
        return _exception(function, ILLEGAL_FUNCTION)

    async def _command(self, function: int, data: bytes) -> bytes:
        if len(data) < 5:
            return _exception(function, ILLEGAL_VALUE)
        address, count, nbytes = struct.unpack(">HHB", data[:5])
        if nbytes != 2 * count or len(data) != 5 + nbytes:
            return _exception(function, ILLEGAL_VALUE)
        if (address, count) != (HR_ITEM, 2):
            return _exception(function, ILLEGAL_ADDRESS)  # item and chute together, or nothing
        item, chute = struct.unpack(">HH", data[5:9])
        if chute > len(self._chutes):
            return _exception(function, ILLEGAL_VALUE)
        try:
            if chute == RECIRCULATE:
                await self._line.recirculate(f"T{item}")
            else:
                await self._line.divert(f"T{item}", self._chutes[chute - 1])
        except DriverError:
            return _exception(function, ILLEGAL_VALUE)  # no such item on the line
        started = self._inducted_at.pop(item, None)
        if started is not None:
            self.decision_latencies_s.append(time.perf_counter() - started)
        return bytes([function]) + data[:4]

    async def _meter(self, pdu: bytes) -> bytes:
        function, data = pdu[0], pdu[1:]
        if function != FC_READ_IR:
            return _exception(
                function, ILLEGAL_ADDRESS if function == FC_READ_HR else ILLEGAL_FUNCTION
            )
        if len(data) != 4:
            return _exception(function, ILLEGAL_VALUE)
        address, count = struct.unpack(">HH", data)
        if not 1 <= count <= METER_REGISTERS or address + count > METER_REGISTERS:
            return _exception(function, ILLEGAL_ADDRESS)
        meter = await self._line.read_meter()
        energy = round(meter.energy_wh * 10) & 0xFFFFFFFF
        power = round(meter.power_w * 10) & 0xFFFFFFFF
        regs = [energy >> 16, energy & 0xFFFF, power >> 16, power & 0xFFFF][
            address : address + count
        ]
        return bytes([function, 2 * count]) + struct.pack(f">{count}H", *regs)
