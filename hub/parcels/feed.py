"""The live event stream behind WatchEvents: the journal read from a durable cursor."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from hub.errors import InvalidArgument
from hub.store import Store
from hub.store.repo import journal
from hub.store.repo.journal import JournalEntry

_PAGE = 500
# Upper bound on how long a follower sleeps when no commit wakes it.
_IDLE_S = 1.0


def parse_cursor(text: str) -> int:
    """A cursor from a previous LiveEvent (the journal row id).

    Raises:
        InvalidArgument: not a cursor this hub issues.
    """
    if not text.isdigit() or len(text) > 19:
        raise InvalidArgument("cursor: must be a cursor from a previous event (digits)")
    return int(text)


class LiveFeed:
    """Reads journal entries after a cursor and then follows new ones as they commit."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def start(self, cursor: str) -> int:
        """The position to stream after: the given cursor, or now when it is empty."""
        if cursor:
            return parse_cursor(cursor)
        async with self._store.read() as tx:
            return await journal.last_cursor(tx)

    async def follow(
        self, after: int, *, site: str = "", carrier: str = ""
    ) -> AsyncIterator[JournalEntry]:
        """Every entry after ``after`` (optionally of one site, or only one carrier's parcels),
        in order, forever."""
        while True:
            signal = self._store.commit_signal()
            async with self._store.read() as tx:
                entries = await journal.after(tx, after, site=site, limit=_PAGE, carrier=carrier)
            for entry in entries:
                yield entry
                after = entry.cursor
            if len(entries) < _PAGE:
                # asyncio.timeout, not wait_for (CPython gh-86296: a lost cancellation).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_IDLE_S):
                        await signal.wait()
