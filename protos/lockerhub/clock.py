"""Time sources: UTC epoch milliseconds everywhere, and sleeping, injectable so tests drive time."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time as UTC epoch milliseconds, and sleeping on that time."""

    def now_ms(self) -> int: ...

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` of this clock's time (at once when ``seconds <= 0``)."""
        ...


class SystemClock:
    """The machine's clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock tests move by hand: ``sleep`` returns only once ``advance`` reached its deadline."""

    def __init__(self, start_ms: int = 1_800_000_000_000) -> None:
        self._now = start_ms
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now_ms(self) -> int:
        return self._now

    @property
    def sleepers(self) -> int:
        """Tasks waiting in ``sleep`` (tests wait for a loop to be parked before advancing)."""
        return sum(1 for _, _, fut in self._sleepers if not fut.done())

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        deadline = self._now + max(1, round(seconds * 1000))
        heapq.heappush(self._sleepers, (deadline, next(self._order), fut))
        await fut

    def advance(self, ms: int) -> None:
        """Move time forward by ``ms`` milliseconds and wake the sleepers whose time came."""
        if ms < 0:
            raise ValueError("a clock does not go back")
        self._now += ms
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)
