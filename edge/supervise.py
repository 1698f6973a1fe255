"""Supervised background loops: a loop that raises is logged, counted and restarted after a backoff.

Only the lifespan ends the agent (by cancelling): a bug in one loop must not take the cabinet's
other duties down with it (conventions: supervised loops). A loop that returns has finished its
work (e.g. a driver's input stream ended) and is not restarted.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, MutableMapping

from lockerhub.clock import Clock

log = logging.getLogger(__name__)

RESTART_MIN_S = 0.1
RESTART_MAX_S = 30.0


def backoff_delay(attempt: int, *, low: float, high: float, rng: random.Random) -> float:
    """Jittered exponential backoff: ``low * 2**attempt`` capped at ``high``, times 0.5-1.0."""
    return float(min(high, low * 2 ** min(attempt, 30)) * rng.uniform(0.5, 1.0))


async def supervise(
    name: str,
    loop: Callable[[], Awaitable[None]],
    *,
    clock: Clock,
    restarts: MutableMapping[str, int],
    rng: random.Random,
    low: float = RESTART_MIN_S,
    high: float = RESTART_MAX_S,
) -> None:
    """Run ``loop()`` until it returns; restart it (with backoff) each time it raises.

    Args:
        restarts: counts restarts by loop name (the agent's stats).
    """
    attempt = 0
    while True:
        started = clock.now_ms()
        try:
            await loop()
        except Exception:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the lifespan is ending this loop: an error on the way out is no restart
            if clock.now_ms() - started > high * 1000:
                attempt = 0  # it ran well for a while: a fresh failure, not a crash loop
            restarts[name] = restarts.get(name, 0) + 1
            delay = backoff_delay(attempt, low=low, high=high, rng=rng)
            attempt += 1
            log.exception("loop %s failed (restart %d in %.1f s)", name, restarts[name], delay)
            await clock.sleep(delay)
        else:
            return


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
