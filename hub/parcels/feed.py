"""The live event stream behind WatchEvents: the journal read from a durable cursor.

The journal (``live_events``) is shared by every hub on the store, so a stream on any hub carries
every hub's changes: the follower re-reads it after each of this hub's own commits and, for the
other hubs' commits, every ``cluster.journal_poll_s``.

Gap safety: the cursor is the row id, and a client resumes after the last id it was sent, so an
id that becomes visible *after* a higher one was streamed would be skipped for good. On SQLite
writers are serialised and ids become visible in order. Where ids are taken before commit and can
commit out of order (PostgreSQL identities; a rolled-back insert also leaves a hole there), the
follower streams only up to the first hole in the id sequence and waits for it to fill, for at
most ``gap_wait_s`` (a writing transaction is short; after that the hole is taken to be a
rollback and passed). Holes are looked for across all sites, so a site filter changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from hub.errors import InvalidArgument
from hub.store import Store, Tx
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


class Horizon:
    """How far a follower may read the journal: up to the first hole in the id sequence, or past
    a hole that stayed open ``gap_wait_s`` (a rollback's). One per follower (it remembers the
    hole it waits on)."""

    def __init__(self, gap_wait_s: float) -> None:
        self._gap_wait_s = gap_wait_s
        self._hole: tuple[int, float] | None = None  # (first missing id, when first seen)

    async def upto(self, tx: Tx, after: int) -> int:
        """The highest id after ``after`` that is safe to stream now."""
        ids = await journal.ids_after(tx, after, _PAGE)
        upto, missing = contiguous(after, ids)
        if missing is not None:
            now = asyncio.get_running_loop().time()
            if self._hole is None or self._hole[0] != missing:
                self._hole = (missing, now)
            elif now - self._hole[1] >= self._gap_wait_s:
                upto = ids[-1] if ids else after  # a rollback's hole: pass it
        return upto


class LiveFeed:
    """Reads journal entries after a cursor and then follows new ones as they commit."""

    def __init__(self, store: Store, *, poll_s: float = _IDLE_S, gap_wait_s: float = 2.0) -> None:
        self._store = store
        self._poll_s = poll_s
        self._gap_wait_s = gap_wait_s

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
        horizon = Horizon(self._gap_wait_s)
        while True:
            signal = self._store.commit_signal()
            async with self._store.read() as tx:
                upto = await horizon.upto(tx, after)
                entries = await journal.after(
                    tx, after, upto=upto, site=site, limit=_PAGE, carrier=carrier
                )
            for entry in entries:
                yield entry
            if upto > after:
                after = upto
            if len(entries) < _PAGE:
                # asyncio.timeout, not wait_for (CPython gh-86296: a lost cancellation).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_s):
                        await signal.wait()


def contiguous(after: int, ids: list[int]) -> tuple[int, int | None]:
    """(the highest id reachable from ``after`` without a hole, the first missing id or None)."""
    upto = after
    for value in ids:
        if value != upto + 1:
            return upto, upto + 1
        upto = value
    return upto, None
