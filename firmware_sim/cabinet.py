"""A simulated locker cabinet implementing lockerhub.driver.HardwareDriver in-process.

Relays (a pulse pops the door open unless a ``jam`` fault is injected), door and item sensors,
chilled-compartment temperature probes, an energy meter (Wh counter from a base load plus relay
pulses), keypad and scanner. The actor API (``scan``, ``enter_code``, ``put_item`` ...) is how
tests and people play courier and recipient; counters (relay pulses per compartment) let tests
prove a door was never opened twice. With ``state_path`` the hardware state survives the agent
process being killed (power loss): relay pulses are on disk before the door moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from lockerhub.driver import (
    CompartmentSpec,
    DoorChanged,
    DriverError,
    InputEvent,
    ItemChanged,
    KeypadEntry,
    MeterReading,
    Scanned,
)

_INPUT_QUEUE = 1024


class Fault(enum.StrEnum):
    """Injectable faults, per compartment (power loss is killing the process; see also
    ``meter_reset``)."""

    JAM = "jam"  # the relay pulses, the door stays shut
    STUCK_ITEM = "stuck_item"  # the item sensor keeps its last reading
    BROKEN_ITEM = "broken_item"  # the item sensor does not answer
    SLOW_RELAY = "slow_relay"  # the pulse is counted, the door opens ``slow_relay_s`` later
    DEAD_BOARD = "dead_board"  # the compartment's lock board does not answer relays_off


@dataclass(slots=True)
class _Compartment:
    spec: CompartmentSpec
    door_open: bool = False
    item: bool = False
    # What the item sensor reads (differs from ``item`` while STUCK_ITEM is injected).
    item_reading: bool = False
    relay_pulses: int = 0
    temperature_c: float | None = None
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
        state_path: JSON file keeping the hardware state across processes (None: memory only).
        slow_relay_s: how long a SLOW_RELAY pulse takes to open the door.
    """

    def __init__(
        self,
        compartments: Sequence[CompartmentSpec],
        *,
        base_load_w: float = 18.0,
        relay_pulse_wh: float = 0.002,
        monotonic: Callable[[], float] = time.monotonic,
        state_path: Path | None = None,
        slow_relay_s: float = 3.0,
    ) -> None:
        if not compartments:
            raise ValueError("a cabinet needs at least one compartment")
        self._specs = tuple(compartments)
        self._comps = {
            c.compartment_id: _Compartment(c, temperature_c=4.0 if c.chilled else None)
            for c in self._specs
        }
        self._state_path = state_path
        self._slow_relay_s = slow_relay_s
        self._energy_offset_wh = 0.0
        self._load_state()
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
        # On disk before the door moves: a process killed now still counted the pulse.
        self._save_state()
        if Fault.SLOW_RELAY in comp.faults:
            await asyncio.sleep(self._slow_relay_s)
        if not comp.door_open and Fault.JAM not in comp.faults:
            comp.door_open = True
            self._emit(DoorChanged(compartment_id, True))
            self._save_state()
        await self._notify()

    async def relays_off(self, board: int) -> None:
        comps = [c for c in self._comps.values() if c.spec.board == board]
        if any(Fault.DEAD_BOARD in c.faults for c in comps):
            raise DriverError(f"lock board {board} does not answer")

    async def read_door(self, compartment_id: str) -> bool:
        return self._get(compartment_id).door_open

    async def read_item(self, compartment_id: str) -> bool:
        comp = self._get(compartment_id)
        if Fault.BROKEN_ITEM in comp.faults:
            raise DriverError(f"item sensor of {compartment_id} does not answer")
        return comp.item_reading

    async def read_temperature(self, compartment_id: str) -> float | None:
        return self._get(compartment_id).temperature_c

    def _energy_wh(self) -> float:
        hours = (self._monotonic() - self._started) / 3600
        pulses = sum(c.relay_pulses for c in self._comps.values())
        return max(
            0.0,
            self._base_load_w * hours + pulses * self._relay_pulse_wh - self._energy_offset_wh,
        )

    async def read_meter(self) -> MeterReading:
        return MeterReading(energy_wh=self._energy_wh(), power_w=self._base_load_w)

    # -- persistence (power loss) ----------------------------------------------------------

    def _load_state(self) -> None:
        if self._state_path is None:
            return
        try:
            data = json.loads(self._state_path.read_text())
        except (OSError, ValueError):
            return
        comps = data.get("compartments") if isinstance(data, dict) else None
        if not isinstance(comps, dict):
            return
        for cid, saved in comps.items():
            comp = self._comps.get(cid)
            if comp is None or not isinstance(saved, dict):
                continue
            comp.relay_pulses = int(saved.get("relay_pulses", 0))
            comp.door_open = bool(saved.get("door_open", False))
            comp.item = comp.item_reading = bool(saved.get("item", False))

    def _save_state(self) -> None:
        # Tiny synchronous write on purpose: it models hardware that has already acted.
        if self._state_path is None:
            return
        data = {
            "compartments": {
                cid: {"relay_pulses": c.relay_pulses, "door_open": c.door_open, "item": c.item}
                for cid, c in self._comps.items()
            }
        }
        tmp = self._state_path.with_suffix(".tmp")
        with contextlib.suppress(OSError):
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self._state_path)

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

    async def enter_code(self, code: str, compartment_id: str | None = None) -> None:
        """A recipient types a pickup code (after choosing a compartment, on keypads that ask)."""
        self._emit(KeypadEntry(code, compartment_id))

    async def put_item(self, compartment_id: str) -> None:
        """Place an item (the door should be open; the sim does not insist)."""
        await self._set_item(compartment_id, True)

    async def take_item(self, compartment_id: str) -> None:
        """Remove the item."""
        await self._set_item(compartment_id, False)

    async def _set_item(self, compartment_id: str, present: bool) -> None:
        comp = self._get(compartment_id)
        if comp.item != present:
            comp.item = present
            if Fault.STUCK_ITEM not in comp.faults and comp.item_reading != present:
                comp.item_reading = present
                self._emit(ItemChanged(compartment_id, present))
            self._save_state()
        await self._notify()

    async def sensor_glitch(self, compartment_id: str, present: bool) -> None:
        """The item sensor reports ``present`` without anything moving (a faulty sensor)."""
        comp = self._get(compartment_id)
        comp.item_reading = present
        self._emit(ItemChanged(compartment_id, present))
        await self._notify()

    async def set_temperature(self, compartment_id: str, celsius: float) -> None:
        """Set a chilled compartment's probe reading (a failing cooler, a door left open)."""
        comp = self._get(compartment_id)
        if comp.temperature_c is None:
            raise DriverError(f"compartment {compartment_id} has no temperature probe")
        comp.temperature_c = float(celsius)

    async def meter_reset(self) -> None:
        """The energy meter's counter restarts from zero (a meter swap or reset)."""
        self._energy_offset_wh += self._energy_wh()

    async def close_door(self, compartment_id: str) -> None:
        """Push the door shut (a no-op when it is closed)."""
        comp = self._get(compartment_id)
        if comp.door_open:
            comp.door_open = False
            self._emit(DoorChanged(compartment_id, False))
            self._save_state()
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
        return {
            "compartments": {
                cid: {
                    "size": c.spec.size.value,
                    "door_open": c.door_open,
                    "item": c.item,
                    "item_reading": c.item_reading,
                    "temperature_c": c.temperature_c,
                    "relay_pulses": c.relay_pulses,
                    "faults": sorted(f.value for f in c.faults),
                }
                for cid, c in self._comps.items()
            },
            "energy_wh": round(self._energy_wh(), 6),
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
