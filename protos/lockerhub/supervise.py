"""Supervised background loops, for hub and edge: a failing loop is logged, counted, restarted.

Only a component's lifespan ends it (by cancelling): a bug in one loop must not take the process's
other duties down with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from lockerhub.backoff import Backoff
from lockerhub.clock import Clock

log = logging.getLogger(__name__)

T = TypeVar("T")


async def supervise(
    name: str,
    loop: Callable[[], Awaitable[None]],
    *,
    clock: Clock,
    on_restart: Callable[[str], None],
    backoff: Backoff,
    stable_s: float = 60.0,
    restart_on_return: bool = True,
) -> None:
    """Run ``loop()`` until cancelled, restarting it whenever it raises.

    Each restart is logged (with the traceback), reported to ``on_restart(name)`` (a metric, a
    counter) and delayed by ``backoff`` measured on ``clock``; a run that lasted ``stable_s``
    resets the backoff. Cancellation propagates at once, whether running or waiting, and an
    error raised while the loop is being cancelled is not a crash to restart.

    Args:
        name: the loop's name, also a metric label (keep the set of names bounded).
        loop: starts one run of the background loop.
        clock: the clock the backoff sleeps on (tests drive it).
        on_restart: called once per restart with ``name``.
        backoff: the delay policy between restarts.
        stable_s: how long a run must last to count as healthy again.
        restart_on_return: a loop expected to run until cancelled is restarted when it returns
            (True); otherwise returning means its work is done and supervision ends.
    """
    while True:
        started = clock.now_ms()
        try:
            await loop()
        except Exception:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the lifespan is ending this loop
            log.exception("background loop %s failed; restarting it", name)
        else:
            if not restart_on_return:
                return
            log.error("background loop %s returned; restarting it", name)
        if clock.now_ms() - started >= stable_s * 1000:
            backoff.reset()
        on_restart(name)
        await clock.sleep(backoff.next_delay())


async def stop(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has finished; raise what it raised other than the
    cancel.

    What ``task.cancel(); with suppress(CancelledError): await task`` means, without its flaw:
    that also swallows a cancel of the caller itself arriving while it waits, and the caller
    carries on instead of stopping.
    """
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled() and (exc := task.exception()) is not None:
        raise exc


async def keep_cancel(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable``; if a cancel of this task arrived meanwhile and was swallowed, raise it.

    On Python 3.11 ``asyncio.wait_for`` returns the result and drops a cancel that lands in the
    same loop pass as the result (CPython gh-86296, fixed in 3.12). aiomqtt and pymodbus wait on
    it, so a loop cancelled while it publishes or polls would carry on and its owner's shutdown
    would hang. Wrap such library calls in this.
    """
    task = asyncio.current_task()
    cancels = task.cancelling() if task is not None else 0
    result = await awaitable
    if task is not None and task.cancelling() > cancels:
        raise asyncio.CancelledError
    return result
