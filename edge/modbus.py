"""Modbus TCP driver for lock/input boards and an energy meter (pymodbus async client).

Register map (docs/edge.md): each lock board is a Modbus device (device id = board + 1) with
``channels`` channels; coil n pulses the relay of channel n (it reads 0 again afterwards);
discrete inputs 0..n-1 are the door sensors (1 = open), n..2n-1 the item sensors (1 = present);
input register n is the channel's temperature in 0.1 C (int16; 0x8000 = no probe). The meter
(device ``meter_unit``) has input registers 0-1 = active energy in 0.1 Wh and 2-3 = active power
in 0.1 W, uint32, high word first. Sensors are polled every ``poll_s``; changes become input events.
Keypads and scanners are not Modbus devices: this driver reports none. pymodbus errors become
DriverError here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Self

from edge.errors import DriverError
from edge.modbus_link import ModbusLink
from lockerhub.driver import CompartmentSpec, DoorChanged, InputEvent, ItemChanged, MeterReading
from lockerhub.supervise import stop

log = logging.getLogger(__name__)

NO_PROBE = 0x8000
_INPUT_QUEUE = 1024


class ModbusDriver:
    """HardwareDriver over Modbus TCP.

    Args:
        compartments: the layout; ``spec.board`` picks the board, the order within a board the
            channel.
        host, port: the Modbus TCP gateway.
        channels: channels per board (the register map's n).
        meter_unit: device id of the energy meter.
        poll_s: sensor polling period.
        timeout_s: per request.
    """

    def __init__(
        self,
        compartments: Sequence[CompartmentSpec],
        *,
        host: str,
        port: int = 502,
        channels: int = 16,
        meter_unit: int = 100,
        poll_s: float = 0.1,
        timeout_s: float = 1.0,
    ) -> None:
        self._specs = tuple(compartments)
        self._channels = channels
        self._meter_unit = meter_unit
        self._poll_s = poll_s
        self._where: dict[str, tuple[int, int]] = {}
        per_board: dict[int, int] = {}
        for spec in self._specs:
            channel = per_board.get(spec.board, 0)
            if channel >= channels:
                raise DriverError(f"board {spec.board} has more than {channels} compartments")
            self._where[spec.compartment_id] = (spec.board, channel)
            per_board[spec.board] = channel + 1
        self._boards = sorted(per_board)
        self._link = ModbusLink(host, port, timeout_s)
        self._inputs: asyncio.Queue[InputEvent] = asyncio.Queue(_INPUT_QUEUE)
        self._bits: dict[int, list[bool]] = {}
        self._poller: asyncio.Task[None] | None = None
        self.inputs_dropped = 0
        self.poll_errors = 0

    async def __aenter__(self) -> Self:
        await self._link.connect()
        for board in self._boards:
            with contextlib.suppress(DriverError):  # a dead board is found by relays_off
                self._bits[board] = await self._read_bits(board)
        self._poller = asyncio.create_task(self._poll(), name="modbus-poll")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        poller, self._poller = self._poller, None
        try:
            if poller is not None:
                await stop(poller)
        finally:
            self._link.close()

    async def _read_bits(self, board: int) -> list[bool]:
        n = self._channels
        response = await self._link.call(
            "read_discrete_inputs", 0, count=2 * n, device_id=board + 1
        )
        return [bool(b) for b in response.bits[: 2 * n]]

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            for board in self._boards:
                try:
                    bits = await self._read_bits(board)
                except DriverError as exc:
                    self.poll_errors += 1
                    log.debug("poll of board %d failed: %s", board, exc)
                    continue
                old = self._bits.get(board)
                self._bits[board] = bits
                if old is not None:
                    self._diff(board, old, bits)

    def _diff(self, board: int, old: list[bool], new: list[bool]) -> None:
        n = self._channels
        for cid, (b, channel) in self._where.items():
            if b != board:
                continue
            if old[channel] != new[channel]:
                self._emit(DoorChanged(cid, new[channel]))
            if old[n + channel] != new[n + channel]:
                self._emit(ItemChanged(cid, new[n + channel]))

    def _emit(self, event: InputEvent) -> None:
        try:
            self._inputs.put_nowait(event)
        except asyncio.QueueFull:
            self.inputs_dropped += 1

    def _locate(self, compartment_id: str) -> tuple[int, int]:
        try:
            return self._where[compartment_id]
        except KeyError:
            raise DriverError(f"no compartment {compartment_id[:20]!r}") from None

    # -- HardwareDriver --------------------------------------------------------------------

    def compartments(self) -> Sequence[CompartmentSpec]:
        return self._specs

    async def fire_relay(self, compartment_id: str) -> None:
        board, channel = self._locate(compartment_id)
        await self._link.call("write_coil", channel, True, device_id=board + 1)

    async def relays_off(self, board: int) -> None:
        await self._link.call("write_coils", 0, [False] * self._channels, device_id=board + 1)

    async def read_door(self, compartment_id: str) -> bool:
        board, channel = self._locate(compartment_id)
        response = await self._link.call(
            "read_discrete_inputs", channel, count=1, device_id=board + 1
        )
        return bool(response.bits[0])

    async def read_item(self, compartment_id: str) -> bool:
        board, channel = self._locate(compartment_id)
        response = await self._link.call(
            "read_discrete_inputs", self._channels + channel, count=1, device_id=board + 1
        )
        return bool(response.bits[0])

    async def read_temperature(self, compartment_id: str) -> float | None:
        board, channel = self._locate(compartment_id)
        response = await self._link.call(
            "read_input_registers", channel, count=1, device_id=board + 1
        )
        raw = int(response.registers[0])
        if raw == NO_PROBE:
            return None
        return (raw - 0x10000 if raw & 0x8000 else raw) / 10

    async def read_meter(self) -> MeterReading:
        return await self._link.read_meter(self._meter_unit)

    async def inputs(self) -> AsyncIterator[InputEvent]:
        while True:
            yield await self._inputs.get()
