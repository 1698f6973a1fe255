"""Supervised background loops: logged, counted and restarted after a backoff when they raise."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import NoReturn

from prometheus_client import Counter

from lockerhub.clock import Clock

log = logging.getLogger(__name__)


class Backoff:
    """Full-jitter exponential backoff: ``uniform(0, min(cap, base * 2**n))``, at least base/2."""

    def __init__(self, base_s: float, cap_s: float) -> None:
        self._base, self._cap, self._attempt = base_s, cap_s, 0

    def next_delay(self) -> float:
        ceiling = min(self._cap, self._base * 2**self._attempt)
        self._attempt = min(self._attempt + 1, 30)
        return max(self._base / 2, random.uniform(0, ceiling))  # noqa: S311 - jitter, not crypto

    def reset(self) -> None:
        self._attempt = 0


async def supervise(
    name: str,
    loop: Callable[[], Awaitable[None]],
    *,
    clock: Clock,
    restarts: Counter,
    backoff: Backoff,
    stable_s: float = 60.0,
) -> NoReturn:
    """Run ``loop()`` until cancelled, restarting it whenever it raises or returns.

    Each restart is logged (with the traceback), counted in ``restarts{task=name}`` and delayed
    by ``backoff`` measured on ``clock``; a run that lasted ``stable_s`` resets the backoff.
    Cancellation (the lifespan ending) propagates at once, whether running or waiting.

    Args:
        name: the task's name, also the metric label (keep the set of names bounded).
        loop: starts one run of the background loop; it is expected to run until cancelled.
        clock: the clock the backoff sleeps on.
        restarts: a counter with a single ``task`` label.
        backoff: the delay policy between restarts.
        stable_s: how long a run must last to count as healthy again.
    """
    while True:
        started = clock.now_ms()
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task %s failed; restarting it", name)
        else:
            log.error("background task %s returned; restarting it", name)
        if clock.now_ms() - started >= stable_s * 1000:
            backoff.reset()
        restarts.labels(name).inc()
        await clock.sleep(backoff.next_delay())
