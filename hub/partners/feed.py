"""A partner's feed: its own parcels' transitions and the service notices, from a durable cursor.

The cursor is the journal row id (as in WatchEvents). What goes out carries no personal data:
parcel id, state, site, carrier, and who caused it only as a kind ("device", not the device
or operator's name); never a phone number (not even masked), a code or a compartment.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from hub.errors import InvalidArgument
from hub.parcels.feed import Horizon
from hub.store import Store, Tx
from hub.store.repo import partners as repo
from hub.store.repo.partners import FeedRow, IncidentRow, Window

_PAGE = 500
_IDLE_S = 1.0
MAX_CURSOR_LEN = 19


def parse_cursor(text: str, last: int) -> int:
    """A cursor from a previous PartnerEvent, no further than the journal's end ``last``.

    Raises:
        InvalidArgument: not digits, too long, or beyond the end (a cursor from the future would
            silently skip the events written until the journal reaches it).
    """
    if len(text) > MAX_CURSOR_LEN or not text.isascii() or not text.isdigit():
        raise InvalidArgument("cursor: must be a cursor from a previous event (digits)")
    value = int(text)
    if value > last:
        raise InvalidArgument("cursor: beyond the end of the feed (not a cursor this hub issued)")
    return value


def actor_kind(actor: str) -> str:
    """``operator:alice`` -> ``operator``; ``device:CAB-1`` -> ``device``: no names to partners."""
    kind = actor.split(":", 1)[0]
    if kind in ("hub", "device", "courier"):
        return kind
    if kind in ("operator", "viewer", "admin"):
        return "operator"
    return "other"


@dataclass(frozen=True, slots=True)
class FeedItem:
    """A row of the feed with, for a notice, the window or incident it is about."""

    row: FeedRow
    window: Window | None = None
    incident: IncidentRow | None = None


async def _item(tx: Tx, row: FeedRow) -> FeedItem:
    kind, _, ref = row.ref.partition(":")
    if row.kind != "notice" or not ref.isdigit():
        return FeedItem(row)
    if kind == "maintenance":
        return FeedItem(row, window=await repo.window(tx, int(ref)))
    return FeedItem(row, incident=await repo.incident(tx, int(ref)))


class PartnerFeed:
    """Reads the journal rows a partner may see after a cursor, then follows new commits."""

    def __init__(self, store: Store, *, gap_wait_s: float = 2.0) -> None:
        self._store = store
        self._gap_wait_s = gap_wait_s

    async def start(self, cursor: str) -> int:
        """Raises InvalidArgument for a cursor this hub did not issue."""
        async with self._store.read() as tx:
            last = await repo.last_journal_id(tx)
        return parse_cursor(cursor, last) if cursor else last

    async def follow(self, after: int, carriers: tuple[str, ...]) -> AsyncIterator[FeedItem]:
        """Every row of ``carriers``' parcels and every notice after ``after``, forever; like
        WatchEvents, never past a hole in the journal's ids that may still fill
        (:class:`hub.parcels.feed.Horizon`)."""
        horizon = Horizon(self._gap_wait_s)
        while True:
            signal = self._store.commit_signal()
            async with self._store.read() as tx:
                upto = await horizon.upto(tx, after)
                rows, scanned = await repo.feed_after(tx, after, carriers, _PAGE, upto=upto)
                items = [await _item(tx, row) for row in rows]
            for item in items:
                yield item
            after = max(after, scanned)
            if len(rows) < _PAGE:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_IDLE_S):
                        await signal.wait()
