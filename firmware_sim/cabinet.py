"""A simulated locker cabinet implementing edge.driver.HardwareDriver in-process.

Relays (a pulse pops the door open unless a ``jam`` fault is injected), door and item sensors, an
energy meter (Wh counter from a base load plus relay pulses), keypad and scanner. The actor API
(``scan``, ``enter_code``, ``put_item`` ...) is how tests and people play courier and recipient;
counters (relay pulses per compartment) let tests prove a door was never opened twice.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from edge.driver import (
    CompartmentSpec,
    DoorChanged,
    InputEvent,
    ItemChanged,
    KeypadEntry,
    MeterReading,
    Scanned,
)
from edge.errors import DriverError

_INPUT_QUEUE = 1024


class Fault(enum.StrEnum):
    """Injectable faults (issue 4 adds stuck/broken sensors, power loss, meter reset)."""

    JAM = "jam"


@dataclass(slots=True)
class _Compartment:
    spec: CompartmentSpec
    door_open: bool = False
    item: bool = False
    relay_pulses: int = 0
    faults: set[Fault] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class ActorResult:
    """What a courier or recipient achieved: the compartment that opened, if any."""

    opened: str | None
    relay_fired: bool

    def to_json(self) -> dict[str, Any]:
        return {"opened": self.opened, "relay_fired": self.relay_fired}


class SimulatedCabinet:
    """In-process cabinet hardware; a HardwareDriver and an actor API.

    Args:
        compartments: the layout (e.g. ``DriverSettings.compartment_specs()``).
        base_load_w: constant draw (controller, display, lighting).
        relay_pulse_wh: energy per lock pulse.
        monotonic: time source for the meter (seconds).
    """

    def __init__(
        self,
        compartments: Sequence[CompartmentSpec],
        *,
        base_load_w: float = 18.0,
        relay_pulse_wh: float = 0.002,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not compartments:
            raise ValueError("a cabinet needs at least one compartment")
        self._specs = tuple(compartments)
        self._comps = {c.compartment_id: _Compartment(c) for c in self._specs}
        if len(self._comps) != len(self._specs):
            raise ValueError("duplicate compartment ids")
        self._inputs: asyncio.Queue[InputEvent] = asyncio.Queue(_INPUT_QUEUE)
        self._base_load_w = base_load_w
        self._relay_pulse_wh = relay_pulse_wh
        self._monotonic = monotonic
        self._started = monotonic()
        self._changed = asyncio.Condition()
        self.inputs_dropped = 0

    # -- HardwareDriver --------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def compartments(self) -> Sequence[CompartmentSpec]:
        return self._specs

    def _get(self, compartment_id: str) -> _Compartment:
        try:
            return self._comps[compartment_id]
        except KeyError:
            raise DriverError(f"no compartment {compartment_id[:20]!r}") from None

    async def fire_relay(self, compartment_id: str) -> None:
        comp = self._get(compartment_id)
        comp.relay_pulses += 1
        if not comp.door_open and Fault.JAM not in comp.faults:
            comp.door_open = True
            self._emit(DoorChanged(compartment_id, True))
        await self._notify()

    async def read_door(self, compartment_id: str) -> bool:
        return self._get(compartment_id).door_open

    async def read_item(self, compartment_id: str) -> bool:
        return self._get(compartment_id).item

    async def read_meter(self) -> MeterReading:
        hours = (self._monotonic() - self._started) / 3600
        pulses = sum(c.relay_pulses for c in self._comps.values())
        return MeterReading(
            energy_wh=self._base_load_w * hours + pulses * self._relay_pulse_wh,
            power_w=self._base_load_w,
        )

    async def inputs(self) -> AsyncIterator[InputEvent]:
        while True:
            yield await self._inputs.get()

    def _emit(self, event: InputEvent) -> None:
        try:
            self._inputs.put_nowait(event)
        except asyncio.QueueFull:
            self.inputs_dropped += 1

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- actor API -------------------------------------------------------------------------

    async def scan(self, parcel_id: str) -> None:
        """A courier scans a parcel label."""
        self._emit(Scanned(parcel_id))

    async def enter_code(self, code: str) -> None:
        """A recipient types a pickup code."""
        self._emit(KeypadEntry(code))

    async def put_item(self, compartment_id: str) -> None:
        """Place an item (the door should be open; the sim does not insist)."""
        comp = self._get(compartment_id)
        if not comp.item:
            comp.item = True
            self._emit(ItemChanged(compartment_id, True))
        await self._notify()

    async def take_item(self, compartment_id: str) -> None:
        """Remove the item."""
        comp = self._get(compartment_id)
        if comp.item:
            comp.item = False
            self._emit(ItemChanged(compartment_id, False))
        await self._notify()

    async def close_door(self, compartment_id: str) -> None:
        """Push the door shut (a no-op when it is closed)."""
        comp = self._get(compartment_id)
        if comp.door_open:
            comp.door_open = False
            self._emit(DoorChanged(compartment_id, False))
        await self._notify()

    async def force_open(self, compartment_id: str) -> None:
        """Pry a door open without the relay."""
        comp = self._get(compartment_id)
        if not comp.door_open:
            comp.door_open = True
            self._emit(DoorChanged(compartment_id, True))
        await self._notify()

    async def inject_fault(self, kind: str, compartment_id: str) -> None:
        """Inject a fault (``jam``: the relay pulses but the door stays shut)."""
        self._get(compartment_id).faults.add(_fault(kind))

    async def clear_fault(self, kind: str, compartment_id: str) -> None:
        """Remove an injected fault."""
        self._get(compartment_id).faults.discard(_fault(kind))

    def relay_pulses(self, compartment_id: str | None = None) -> int:
        """Relay pulses of one compartment, or of all."""
        if compartment_id is None:
            return sum(c.relay_pulses for c in self._comps.values())
        return self._get(compartment_id).relay_pulses

    def state(self) -> dict[str, Any]:
        """A JSON-ready snapshot of every compartment and the meter."""
        hours = (self._monotonic() - self._started) / 3600
        return {
            "compartments": {
                cid: {
                    "size": c.spec.size.value,
                    "door_open": c.door_open,
                    "item": c.item,
                    "relay_pulses": c.relay_pulses,
                    "faults": sorted(f.value for f in c.faults),
                }
                for cid, c in self._comps.items()
            },
            "energy_wh": round(
                self._base_load_w * hours + self.relay_pulses() * self._relay_pulse_wh, 6
            ),
            "power_w": self._base_load_w,
        }

    # -- high-level actors -----------------------------------------------------------------

    async def wait_relay_open(self, before: Mapping[str, int], timeout_s: float) -> ActorResult:
        """Wait until a relay pulse newer than ``before`` opened a door (or ``timeout_s``)."""

        def outcome() -> ActorResult | None:
            fired = [cid for cid, c in self._comps.items() if c.relay_pulses > before[cid]]
            opened = [cid for cid in fired if self._comps[cid].door_open]
            if opened:
                return ActorResult(opened[0], True)
            return None

        try:
            async with asyncio.timeout(timeout_s), self._changed:
                while (result := outcome()) is None:
                    await self._changed.wait()
                return result
        except TimeoutError:
            fired = any(c.relay_pulses > before[cid] for cid, c in self._comps.items())
            return ActorResult(None, fired)

    def _pulse_snapshot(self) -> dict[str, int]:
        return {cid: c.relay_pulses for cid, c in self._comps.items()}

    async def courier_deposit(self, parcel_id: str, *, timeout_s: float = 3.0) -> ActorResult:
        """Scan, wait for a door to open, put the item in, close the door."""
        before = self._pulse_snapshot()
        await self.scan(parcel_id)
        result = await self.wait_relay_open(before, timeout_s)
        if result.opened is not None:
            await self.put_item(result.opened)
            await self.close_door(result.opened)
        return result

    async def recipient_pickup(self, code: str, *, timeout_s: float = 3.0) -> ActorResult:
        """Enter the code, wait for a door to open, take the item, close the door."""
        before = self._pulse_snapshot()
        await self.enter_code(code)
        result = await self.wait_relay_open(before, timeout_s)
        if result.opened is not None:
            await self.take_item(result.opened)
            await self.close_door(result.opened)
        return result


def _fault(kind: str) -> Fault:
    try:
        return Fault(kind)
    except ValueError:
        raise DriverError(
            f"unknown fault {kind[:20]!r} (known: {', '.join(f.value for f in Fault)})"
        ) from None
