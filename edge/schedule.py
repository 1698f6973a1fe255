"""One timer for many agents: a fleet's housekeeping sweeps run from a single task.

A cabinet's agent sleeps and sweeps in a loop of its own (``edge.housekeeping``). Ten thousand
simulated cabinets in one process would mean ten thousand task wake-ups a second for sweeps that
almost always find nothing to do; a :class:`SharedTicker` instead calls every joined agent's job
once per period from one task, in slices spread over the period. A job that raises is logged and
reported to its agent (``stats.loop_restarts``, like a restarted loop) and is called again on the
next period.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Protocol

from lockerhub.clock import Clock, SystemClock

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class Ticker(Protocol):
    """Calls a joined job about every period, until the job leaves."""

    @property
    def period_s(self) -> float: ...

    def join(
        self, name: str, job: Job, on_error: Callable[[str], None]
    ) -> contextlib.AbstractContextManager[None]: ...


class SharedTicker:
    """Runs every joined job once per ``period_s`` from one task (:meth:`run`).

    Args:
        period_s: how often each job runs.
        slices: the period is cut into this many slices, each running its share of the jobs,
            so the work is spread instead of one burst per period.
    """

    def __init__(self, period_s: float, *, slices: int = 10, clock: Clock | None = None) -> None:
        if not period_s > 0 or slices < 1:
            raise ValueError("period_s must be > 0 and slices >= 1")
        self._period_s = period_s
        self._slices = slices
        self._clock: Clock = clock or SystemClock()
        self._jobs: dict[int, tuple[str, Job, Callable[[str], None]]] = {}
        self._next_key = 0
        self.passes = 0  # complete passes over the jobs (tests, benchmarks)

    @property
    def period_s(self) -> float:
        return self._period_s

    @property
    def jobs(self) -> int:
        return len(self._jobs)

    @contextlib.contextmanager
    def join(self, name: str, job: Job, on_error: Callable[[str], None]) -> Iterator[None]:
        """Have ``job`` called every period while the ``with`` block lasts."""
        key, self._next_key = self._next_key, self._next_key + 1
        self._jobs[key] = (name, job, on_error)
        try:
            yield
        finally:
            del self._jobs[key]

    async def run(self) -> None:
        """Call the jobs until cancelled (a job that raises does not stop the others)."""
        slice_ms = self._period_s * 1000 / self._slices
        while True:
            start = self._clock.now_ms()
            keys = list(self._jobs)
            share = -(-len(keys) // self._slices)  # ceiling: every job once per period
            for i in range(self._slices):
                for key in keys[i * share : (i + 1) * share]:
                    entry = self._jobs.get(key)
                    if entry is not None:  # it may have left during this pass
                        await self._call(*entry)
                # Sleep to the slice's end (a slice that overran still yields to the loop).
                end = start + (i + 1) * slice_ms
                await self._clock.sleep(max(0.0, end - self._clock.now_ms()) / 1000)
            self.passes += 1

    async def _call(self, name: str, job: Job, on_error: Callable[[str], None]) -> None:
        try:
            await job()
        except Exception:
            log.exception("%s failed; called again next period", name)
            on_error(name)
