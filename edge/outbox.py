"""The outbox pump: hands stored events and command results to the broker, oldest first.

An entry leaves the outbox only after the broker acknowledged it (PUBACK for QoS 1; aiomqtt's
publish awaits it). One message in flight at a time keeps seq order across reconnects; a publish
that fails leaves the entry for the next connection, and the hub dedupes by event id / seq.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from edge.store import Store
from lockerhub.topics import Kind

log = logging.getLogger(__name__)

Publish = Callable[[Kind, bytes], Awaitable[None]]


class Outbox:
    """Wakes the pump when entries are committed; ``pump()`` runs per connection."""

    def __init__(self, store: Store, *, batch: int = 100) -> None:
        self._store = store
        self._batch = batch
        self._wakeup = asyncio.Event()
        self.published = 0

    @property
    def depth(self) -> int:
        """Entries not yet acknowledged by the broker."""
        return self._store.outbox_depth

    def notify(self) -> None:
        """Tell the pump that new entries were committed."""
        self._wakeup.set()

    async def pump(self, publish: Publish) -> None:
        """Publish every pending entry in order, then wait for more; runs until cancelled.

        Raises:
            LinkError: from ``publish`` when the connection fails (the entry stays stored).
        """
        while True:
            self._wakeup.clear()
            entries = await self._store.outbox_peek(self._batch)
            if not entries:
                await self._wakeup.wait()
                continue
            for entry in entries:
                await publish(entry.kind, entry.payload)
                await self._store.outbox_ack(entry.id)
                self.published += 1
            log.debug("outbox: published %d, %d pending", len(entries), self.depth)
