"""Time sources: UTC epoch milliseconds everywhere, and sleeping, injectable so tests drive time."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time as UTC epoch milliseconds, and a sleep measured on the same clock."""

    def now_ms(self) -> int: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The machine's clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock tests move by hand: ``sleep`` returns only when ``advance`` passes its deadline.

    A test advances time and then waits for the code under test to reach its next sleep
    (:meth:`wait_for_sleepers`), which proves the loop ran, instead of sleeping in real time.
    """

    def __init__(self, start_ms: int = 1_800_000_000_000) -> None:
        self._now = start_ms
        self._order = itertools.count()
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._changed: asyncio.Event | None = None
        self.sleeps = 0  # how many sleeps have started, ever (a loop's tick counter)

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: int) -> None:
        """Move time forward by ``ms`` milliseconds, waking every sleeper whose deadline passed."""
        if ms < 0:
            raise ValueError("a clock does not go back")
        self._now += ms
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, waiter = heapq.heappop(self._sleepers)
            if not waiter.done():
                waiter.set_result(None)

    async def sleep(self, seconds: float) -> None:
        deadline = self._now + max(0, round(seconds * 1000))
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._order), waiter))
        self.sleeps += 1
        self._notify()
        if deadline <= self._now:
            waiter.set_result(None)
        try:
            await waiter
        finally:
            self._sleepers = [s for s in self._sleepers if s[2] is not waiter]
            heapq.heapify(self._sleepers)

    @property
    def sleeping(self) -> int:
        """How many tasks are sleeping on this clock now."""
        return sum(1 for _, _, w in self._sleepers if not w.done())

    async def wait_for_sleeps(self, count: int) -> None:
        """Return once ``sleeps`` reached ``count``: the code under test got to its next sleep."""
        while self.sleeps < count:
            self._changed = self._changed or asyncio.Event()
            await self._changed.wait()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None


async def wait_or_sleep(event: asyncio.Event, clock: Clock, seconds: float) -> None:
    """Return when ``event`` is set or ``seconds`` of ``clock`` time passed, whichever is first."""
    if event.is_set():
        return
    async with asyncio.TaskGroup() as tg:
        waiter = tg.create_task(event.wait())
        sleeper = tg.create_task(clock.sleep(seconds))
        await asyncio.wait((waiter, sleeper), return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        sleeper.cancel()
