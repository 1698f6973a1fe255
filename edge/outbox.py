"""The outbox pump: hands stored events and command results to the broker, oldest first.

An entry leaves the outbox only after the broker acknowledged it (PUBACK for QoS 1; aiomqtt's
publish awaits it). One message in flight at a time keeps seq order across reconnects; a publish
that fails leaves the entry for the next connection, and the hub dedupes by event id / seq.
Acknowledged entries are removed in one transaction per batch (one fsync, not one per event), and
the backlog drains at most ``rate_per_s`` after a reconnect (a small burst is allowed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from edge.store import Store
from lockerhub.clock import Clock, SystemClock
from lockerhub.topics import Kind

log = logging.getLogger(__name__)

Publish = Callable[[Kind, bytes], Awaitable[None]]
_BURST = 10


class Timer(Protocol):
    """Monotonic seconds and a sleep on the same time line: what paces the replay."""

    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class LoopTimer:
    """The running event loop's clock (tests pass a virtual one)."""

    def time(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class Outbox:
    """Wakes the pump when entries are committed; ``pump()`` runs per connection."""

    def __init__(
        self,
        store: Store,
        *,
        batch: int = 100,
        clock: Clock | None = None,
        timer: Timer | None = None,
    ) -> None:
        self._store = store
        self._batch = batch
        self._clock: Clock = clock or SystemClock()
        self._timer: Timer = timer or LoopTimer()
        self._wakeup = asyncio.Event()
        self.published = 0

    @property
    def depth(self) -> int:
        """Entries not yet acknowledged by the broker."""
        return self._store.outbox_depth

    def notify(self) -> None:
        """Tell the pump that new entries were committed."""
        self._wakeup.set()

    async def pump(self, publish: Publish, *, rate_per_s: float = 1e9) -> None:
        """Publish every pending entry in order, then wait for more; runs until cancelled.

        Raises:
            LinkError: from ``publish`` when the connection fails (the entry stays stored).
        """
        interval = 1.0 / rate_per_s
        next_at = self._timer.time()
        while True:
            self._wakeup.clear()
            entries = await self._store.outbox_peek(self._batch)
            if not entries:
                await self._wakeup.wait()
                continue
            done: list[int] = []
            try:
                for entry in entries:
                    now = self._timer.time()
                    next_at = max(next_at, now - _BURST * interval)
                    if next_at > now:
                        await self._timer.sleep(next_at - now)
                    next_at += interval
                    await publish(entry.kind, entry.payload)
                    done.append(entry.id)
            finally:
                if done:
                    await self._store.outbox_ack(*done, now_ms=self._clock.now_ms())
                    self.published += len(done)
            log.debug("outbox: published %d, %d pending", len(done), self.depth)
