"""The live event stream behind WatchEvents: the journal read from a durable cursor.

The journal (``live_events``) is shared by every hub on the store, so a stream on any hub carries
every hub's changes: the follower re-reads it after each of this hub's own commits and, for the
other hubs' commits, every ``cluster.journal_poll_s``. Order and gaps: the cursor is the row id,
and on SQLite writers are serialised, so ids become visible in increasing order and reading past
the last id seen never skips one. On a store where ids can commit out of order (PostgreSQL
identities), the back end must make ``journal.after`` return only ids below its oldest
transaction still in flight (docs/guide/city.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from hub.errors import InvalidArgument
from hub.store import Store
from hub.store.repo import journal
from hub.store.repo.journal import JournalEntry

_PAGE = 500
# Default upper bound on how long a follower sleeps when no commit of this hub wakes it.
_IDLE_S = 0.2


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

    def __init__(self, store: Store, *, poll_s: float = _IDLE_S) -> None:
        self._store = store
        self._poll_s = poll_s

    async def start(self, cursor: str) -> int:
        """The position to stream after: the given cursor, or now when it is empty."""
        if cursor:
            return parse_cursor(cursor)
        async with self._store.read() as tx:
            return await journal.last_cursor(tx)

    async def follow(self, after: int, *, site: str = "") -> AsyncIterator[JournalEntry]:
        """Every entry after ``after`` (optionally of one site), in order, forever."""
        while True:
            signal = self._store.commit_signal()
            async with self._store.read() as tx:
                entries = await journal.after(tx, after, site=site, limit=_PAGE)
            for entry in entries:
                yield entry
                after = entry.cursor
            if len(entries) < _PAGE:
                # asyncio.timeout, not wait_for (CPython gh-86296: a lost cancellation).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_s):
                        await signal.wait()
