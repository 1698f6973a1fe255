"""A simulated cross-belt sorting line implementing HardwareDriver + SorterDriver in-process.

Items are inducted (by ``induct`` or automatically at ``induction_rate_per_s``), pass the scanner
(a share ``no_read_rate`` unreadable), are diverted into chutes whose photo-eye confirms the drop
after ``confirm_delay_s`` (a ``no_confirm`` fault makes a chute's tilt fail silently), or ride
another loop of ``loop_s`` when recirculated. Chute-full sensors are set by tests or people. The
meter counts a base load plus energy per divert. ``landed`` records what ended up in which chute.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from types import TracebackType
from typing import Any, Self

from lockerhub.driver import (
    ChuteChanged,
    CompartmentSpec,
    DriverError,
    DropConfirmed,
    Inducted,
    InputEvent,
    MeterReading,
)

_INPUT_QUEUE = 4096
NO_CONFIRM = "no_confirm"


class SimulatedSortingLine:
    """In-process sorting line.

    Args:
        chutes: chute ids.
        destinations: destinations the automatic induction draws from.
        induction_rate_per_s: automatic inductions per second (0: only ``induct``).
        no_read_rate: share of automatic inductions the scanner cannot read.
        confirm_delay_s: divert -> drop confirmation.
        loop_s: one recirculation loop.
        seed: random seed (reproducible runs).
    """

    def __init__(
        self,
        chutes: Sequence[str],
        *,
        destinations: Sequence[str] = (),
        induction_rate_per_s: float = 0.0,
        no_read_rate: float = 0.0,
        confirm_delay_s: float = 0.05,
        loop_s: float = 0.2,
        base_load_w: float = 1500.0,
        divert_wh: float = 0.02,
        seed: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not chutes:
            raise ValueError("a sorting line needs chutes")
        self._chutes = tuple(chutes)
        self._destinations = tuple(destinations)
        self._rate = induction_rate_per_s
        self._no_read_rate = no_read_rate
        self._confirm_delay_s = confirm_delay_s
        self._loop_s = loop_s
        self._base_load_w = base_load_w
        self._divert_wh = divert_wh
        self._rng = random.Random(seed)  # noqa: S311 - simulation, not cryptography
        self._monotonic = monotonic
        self._started = monotonic()
        self._inputs: asyncio.Queue[InputEvent] = asyncio.Queue(_INPUT_QUEUE)
        self._ids = itertools.count(1)
        self._items: dict[str, tuple[str | None, str | None, int]] = {}
        self._full: dict[str, bool] = dict.fromkeys(self._chutes, False)
        self._faults: dict[str, set[str]] = {c: set() for c in self._chutes}
        self._tasks: set[asyncio.Task[None]] = set()
        self.diverts = 0
        self.inputs_dropped = 0
        self.landed: dict[str, list[str | None]] = {c: [] for c in self._chutes}

    # -- HardwareDriver --------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._rate > 0:
            self._spawn(self._auto_induction())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

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
        hours = (self._monotonic() - self._started) / 3600
        return MeterReading(
            energy_wh=self._base_load_w * hours + self.diverts * self._divert_wh,
            power_w=self._base_load_w,
        )

    async def inputs(self) -> AsyncIterator[InputEvent]:
        while True:
            yield await self._inputs.get()

    # -- SorterDriver ----------------------------------------------------------------------

    def chutes(self) -> Sequence[str]:
        return self._chutes

    def _chute(self, chute_id: str) -> str:
        if chute_id not in self._full:
            raise DriverError(f"no chute {chute_id[:20]!r}")
        return chute_id

    async def divert(self, item_id: str, chute_id: str) -> None:
        chute = self._chute(chute_id)
        if item_id not in self._items:
            raise DriverError(f"no item {item_id[:20]!r} on the line")
        self.diverts += 1
        if NO_CONFIRM in self._faults[chute]:
            return  # the tray never tilts: the item rides on, nothing is confirmed
        item = self._items.pop(item_id)
        self.landed[chute].append(item[0])
        self._spawn(self._later(self._confirm_delay_s, DropConfirmed(item_id, chute)))

    async def recirculate(self, item_id: str) -> None:
        item = self._items.get(item_id)
        if item is None:
            raise DriverError(f"no item {item_id[:20]!r} on the line")
        parcel, destination, rounds = item
        self._items[item_id] = (parcel, destination, rounds + 1)
        self._spawn(self._later(self._loop_s, Inducted(item_id, parcel, destination, rounds + 1)))

    async def chute_full(self, chute_id: str) -> bool:
        return self._full[self._chute(chute_id)]

    # -- actor API -------------------------------------------------------------------------

    async def induct(
        self, parcel_id: str | None, destination: str | None, *, no_read: bool = False
    ) -> str:
        """Put an item on the line; returns its item id."""
        item_id = f"T{next(self._ids)}"
        if no_read:
            parcel_id = destination = None
        self._items[item_id] = (parcel_id, destination, 0)
        self._emit(Inducted(item_id, parcel_id, destination, 0))
        return item_id

    async def set_chute_full(self, chute_id: str, full: bool) -> None:
        """Set a chute's full sensor."""
        chute = self._chute(chute_id)
        if self._full[chute] != full:
            self._full[chute] = full
            self._emit(ChuteChanged(chute, full))

    async def inject_fault(self, kind: str, chute_id: str) -> None:
        """``no_confirm``: the chute's photo-eye never confirms a drop."""
        if kind != NO_CONFIRM:
            raise DriverError(f"unknown fault {kind[:20]!r} (known: {NO_CONFIRM})")
        self._faults[self._chute(chute_id)].add(kind)

    def state(self) -> dict[str, Any]:
        return {
            "chutes": {
                c: {"full": self._full[c], "landed": len(self.landed[c])} for c in self._chutes
            },
            "on_line": len(self._items),
            "diverts": self.diverts,
        }

    # -- internals -------------------------------------------------------------------------

    def _emit(self, event: InputEvent) -> None:
        try:
            self._inputs.put_nowait(event)
        except asyncio.QueueFull:
            self.inputs_dropped += 1

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)  # owned: cancelled on __aexit__
        task.add_done_callback(self._tasks.discard)

    async def _later(self, delay: float, event: InputEvent) -> None:
        await asyncio.sleep(delay)
        self._emit(event)

    async def _auto_induction(self) -> None:
        n = 0
        while True:
            await asyncio.sleep(1.0 / self._rate)
            n += 1
            destination = self._rng.choice(self._destinations) if self._destinations else "D0"
            no_read = self._rng.random() < self._no_read_rate
            await self.induct(f"SIM-{n:07d}", destination, no_read=no_read)
