"""Supervised background loops: logged, counted and restarted after a backoff when they raise."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn

from prometheus_client import Counter

from lockerhub.backoff import Backoff
from lockerhub.clock import Clock

log = logging.getLogger(__name__)


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
