"""A simulated cabinet served as Modbus TCP lock/input boards and an energy meter (pymodbus).

The register map is the one ``edge.modbus.ModbusDriver`` reads (docs/edge.md): one Modbus device
per lock board (device id = board + 1) and the meter at ``meter_unit``. Every request is answered
from the live ``SimulatedCabinet``, so faults injected there (jam, broken sensors, dead board) show
on the wire: a dead board answers DEVICE_FAILURE.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from functools import partial
from types import TracebackType
from typing import Self

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from firmware_sim.cabinet import Fault, SimulatedCabinet
from firmware_sim.errors import SimError
from lockerhub.driver import DriverError

# Register map (also in docs/edge.md).
CHANNELS = 16  # relay/sensor channels per lock board (default n)
# Discrete inputs 0..n-1: door open; n..2n-1: item present. Coils 0..n-1: relay pulse.
# Input registers 0..n-1: temperature in 0.1 C (int16).
NO_PROBE = 0x8000  # input register value of a channel without a temperature probe
DEFAULT_METER_UNIT = 100

_FC_READ_COILS, _FC_READ_DI, _FC_READ_IR = 1, 2, 4
_FC_WRITE_COIL, _FC_WRITE_COILS = 5, 15


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _bits_to_regs(bits: list[bool]) -> list[int]:
    regs = []
    for i in range(0, len(bits), 16):
        regs.append(sum(1 << j for j, b in enumerate(bits[i : i + 16]) if b))
    return regs


class ModbusCabinetServer:
    """Serve ``sim`` over Modbus TCP on ``host:port`` (port 0: a free one)."""

    def __init__(
        self,
        sim: SimulatedCabinet,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        meter_unit: int = DEFAULT_METER_UNIT,
        channels: int = CHANNELS,
    ) -> None:
        self._sim = sim
        self._channels = channels
        self._host = host
        self._port = port or free_port(host)
        self._meter_unit = meter_unit
        self._boards: dict[int, list[str]] = {}
        for spec in sim.compartments():
            self._boards.setdefault(spec.board, []).append(spec.compartment_id)
        if any(len(c) > channels for c in self._boards.values()):
            raise SimError(f"at most {channels} compartments per board")
        if meter_unit in (b + 1 for b in self._boards):
            raise SimError("meter_unit collides with a board's device id")
        self._server: ModbusTcpServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self._host, self._port

    def _devices(self) -> list[SimDevice]:
        # Bit blocks are whole 16-bit registers.
        n = -(-self._channels // 16) * 16
        devices = []
        for board in self._boards:
            devices.append(
                SimDevice(
                    id=board + 1,
                    simdata=(
                        [SimData(0, values=[False] * n, datatype=DataType.BITS)],
                        [SimData(0, values=[False] * 2 * n, datatype=DataType.BITS)],
                        [SimData(0, count=1, values=0, datatype=DataType.REGISTERS)],
                        [SimData(0, count=n, values=0, datatype=DataType.REGISTERS)],
                    ),
                    use_bit_addressing=True,
                    action=partial(self._board_action, board),
                )
            )
        devices.append(
            SimDevice(
                id=self._meter_unit,
                simdata=(
                    [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
                    [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
                    [SimData(0, count=1, values=0, datatype=DataType.REGISTERS)],
                    [SimData(0, count=4, values=0, datatype=DataType.REGISTERS)],
                ),
                action=self._meter_action,
            )
        )
        return devices

    async def _board_action(
        self,
        board: int,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        cids = self._boards[board]
        comps = [self._sim.state()["compartments"][c] for c in cids]
        if any(Fault.DEAD_BOARD.value in c["faults"] for c in comps):
            return ExcCodes.DEVICE_FAILURE
        try:
            if function_code in (_FC_WRITE_COIL, _FC_WRITE_COILS) and set_values is not None:
                for i, value in enumerate(set_values):
                    channel = address + i
                    if value and channel < len(cids):
                        await self._sim.fire_relay(cids[channel])
                # A pulse, not a latch: the coil reads 0 again.
                set_values[:] = [False] * len(set_values)
            elif function_code == _FC_READ_DI:
                doors = [bool(c["door_open"]) for c in comps]
                items = [await self._sim.read_item(cid) for cid in cids]
                n = self._channels
                bits = (doors + [False] * n)[:n] + (items + [False] * n)[:n]
                registers[:] = (_bits_to_regs(bits) + [0] * len(registers))[: len(registers)]
            elif function_code == _FC_READ_IR:
                temps = []
                for cid in cids:
                    t = await self._sim.read_temperature(cid)
                    temps.append(NO_PROBE if t is None else round(t * 10) & 0xFFFF)
                registers[:] = (temps + [NO_PROBE] * len(registers))[: len(registers)]
        except DriverError:
            return ExcCodes.DEVICE_FAILURE
        return None

    async def _meter_action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if function_code == _FC_READ_IR:
            meter = await self._sim.read_meter()
            energy = round(meter.energy_wh * 10) & 0xFFFFFFFF
            power = round(meter.power_w * 10) & 0xFFFFFFFF
            registers[:] = [energy >> 16, energy & 0xFFFF, power >> 16, power & 0xFFFF]
        return None

    async def __aenter__(self) -> Self:
        server = ModbusTcpServer(self._devices(), address=(self._host, self._port))
        self._server = server
        self._task = asyncio.create_task(server.serve_forever())
        # Ready when a TCP connect succeeds (pymodbus has no "listening" callback).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            try:
                _, writer = await asyncio.open_connection(self._host, self._port)
            except OSError:
                if loop.time() > deadline or self._task.done():
                    await self.__aexit__(None, None, None)
                    raise SimError(f"modbus server did not start on {self._port}") from None
                await asyncio.sleep(0.02)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        server, self._server = self._server, None
        task, self._task = self._task, None
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
