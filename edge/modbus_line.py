"""Modbus TCP driver for a sorting line's controller: induction scanner, diverters, chute sensors.

Register map (docs/edge.md, "Sorting line register map"), line controller at unit ``line_unit``:
input registers 0-40 hold the head of the line's event queue (0: sequence number, 0 = empty;
1: type, 1 = inducted, 2 = drop confirmed; 2: item (tray) number; 3: round, or the chute number
of a confirmation; 4: flags, bit 0 = no-read; 5-24: parcel id and 25-40: destination, ASCII, two
characters per register, high byte first, NUL padded), 41 the queue depth, 42 the number of chutes.
Holding register 0 acknowledges the head (write its sequence number: FC6); holding registers 1-2
take a command as one FC16 write: item number and chute number (1..n in ``chutes`` order; 0 =
recirculate). Discrete inputs 0..n-1 are the chute-full sensors. The meter is a separate unit with
the cabinet meter's registers. The queue is drained every ``poll_s``; pymodbus errors become
DriverError here and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Self

from edge.errors import DriverError
from edge.modbus_link import ModbusLink
from lockerhub.driver import (
    ChuteChanged,
    CompartmentSpec,
    DropConfirmed,
    Inducted,
    InputEvent,
    MeterReading,
)
from lockerhub.supervise import stop

log = logging.getLogger(__name__)

EVENT_REGISTERS = 43
INDUCTED, CONFIRMED = 1, 2
NO_READ = 1
HR_ACK, HR_COMMAND = 0, 1
RECIRCULATE = 0
_INPUT_QUEUE = 4096
# Events drained per poll at most: the rest waits for the next poll (bounded work per tick).
_DRAIN = 256


def registers_text(registers: Sequence[int]) -> str:
    raw = struct.pack(f">{len(registers)}H", *registers)
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


class ModbusLineDriver:
    """HardwareDriver + SorterDriver over Modbus TCP.

    Args:
        chutes: chute ids; chute number k on the wire is ``chutes[k - 1]``.
        host, port: the Modbus TCP gateway.
        line_unit: unit id of the line controller.
        meter_unit: unit id of the energy meter.
        poll_s: event queue and chute sensor polling period.
        timeout_s: per request.
    """

    def __init__(
        self,
        chutes: Sequence[str],
        *,
        host: str,
        port: int = 502,
        line_unit: int = 1,
        meter_unit: int = 100,
        poll_s: float = 0.01,
        timeout_s: float = 1.0,
    ) -> None:
        if not chutes:
            raise DriverError("a sorting line needs chutes")
        self._chutes = tuple(chutes)
        self._number = {c: i + 1 for i, c in enumerate(self._chutes)}
        self._line_unit, self._meter_unit = line_unit, meter_unit
        self._poll_s = poll_s
        self._link = ModbusLink(host, port, timeout_s)
        self._inputs: asyncio.Queue[InputEvent] = asyncio.Queue(_INPUT_QUEUE)
        self._full: list[bool] = [False] * len(self._chutes)
        self._poller: asyncio.Task[None] | None = None
        self.inputs_dropped = 0
        self.poll_errors = 0

    async def __aenter__(self) -> Self:
        await self._link.connect()
        n = await self._read_registers(42, 1)
        if n[0] != len(self._chutes):
            self._link.close()
            raise DriverError(f"the line has {n[0]} chutes, the settings name {len(self._chutes)}")
        self._full = await self._read_full()
        self._poller = asyncio.create_task(self._poll(), name="modbus-line-poll")
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

    async def _read_registers(self, address: int, count: int) -> list[int]:
        r = await self._link.call(
            "read_input_registers", address, count=count, device_id=self._line_unit
        )
        return [int(v) for v in r.registers]

    async def _read_full(self) -> list[bool]:
        r = await self._link.call(
            "read_discrete_inputs", 0, count=len(self._chutes), device_id=self._line_unit
        )
        return [bool(b) for b in r.bits[: len(self._chutes)]]

    async def _poll(self) -> None:
        while True:
            try:
                await self._drain()
                full = await self._read_full()
            except DriverError as exc:
                self.poll_errors += 1
                log.debug("line poll failed: %s", exc)
                await asyncio.sleep(self._poll_s)
                continue
            for i, (old, new) in enumerate(zip(self._full, full, strict=True)):
                if old != new:
                    self._emit(ChuteChanged(self._chutes[i], new))
            self._full = full
            await asyncio.sleep(self._poll_s)

    async def _drain(self) -> None:
        """Read, hand on and acknowledge queued events until the queue is empty."""
        for _ in range(_DRAIN):
            regs = await self._read_registers(0, EVENT_REGISTERS)
            seq = regs[0]
            if seq == 0:
                return
            event = self._decode(regs)
            if event is not None:
                self._emit(event)
            await self._link.call("write_register", HR_ACK, seq, device_id=self._line_unit)

    def _decode(self, regs: list[int]) -> InputEvent | None:
        kind, item, arg, flags = regs[1], regs[2], regs[3], regs[4]
        if kind == INDUCTED:
            if flags & NO_READ:
                return Inducted(str(item), None, None, arg)
            return Inducted(str(item), registers_text(regs[5:25]), registers_text(regs[25:41]), arg)
        if kind == CONFIRMED and 1 <= arg <= len(self._chutes):
            return DropConfirmed(str(item), self._chutes[arg - 1])
        log.warning("line event of unknown type %d (chute %d) ignored", kind, arg)
        return None

    def _emit(self, event: InputEvent) -> None:
        try:
            self._inputs.put_nowait(event)
        except asyncio.QueueFull:
            self.inputs_dropped += 1

    def _item(self, item_id: str) -> int:
        if not item_id.isdigit() or not 0 < int(item_id) <= 0xFFFF:
            raise DriverError(f"no item {item_id[:20]!r} on this line")
        return int(item_id)

    # -- SorterDriver ----------------------------------------------------------------------

    def chutes(self) -> Sequence[str]:
        return self._chutes

    async def divert(self, item_id: str, chute_id: str) -> None:
        number = self._number.get(chute_id)
        if number is None:
            raise DriverError(f"no chute {chute_id[:20]!r}")
        await self._link.call(
            "write_registers", HR_COMMAND, [self._item(item_id), number], device_id=self._line_unit
        )

    async def recirculate(self, item_id: str) -> None:
        await self._link.call(
            "write_registers",
            HR_COMMAND,
            [self._item(item_id), RECIRCULATE],
            device_id=self._line_unit,
        )

    async def chute_full(self, chute_id: str) -> bool:
        number = self._number.get(chute_id)
        if number is None:
            raise DriverError(f"no chute {chute_id[:20]!r}")
        return self._full[number - 1]

    # -- HardwareDriver --------------------------------------------------------------------

    def compartments(self) -> Sequence[CompartmentSpec]:
        return ()

    async def fire_relay(self, compartment_id: str) -> None:
        raise DriverError("a sorting line has no compartments")

    async def read_door(self, compartment_id: str) -> bool:
        raise DriverError("a sorting line has no compartments")

    async def read_item(self, compartment_id: str) -> bool:
        raise DriverError("a sorting line has no compartments")

    async def read_temperature(self, compartment_id: str) -> float | None:
        return None

    async def relays_off(self, board: int) -> None:
        return None

    async def read_meter(self) -> MeterReading:
        return await self._link.read_meter(self._meter_unit)

    async def inputs(self) -> AsyncIterator[InputEvent]:
        while True:
            yield await self._inputs.get()
