"""Service notices for partners: maintenance windows an operator schedules, incidents the hub
detects (broker down, store down, a site with every cabinet offline).

Each becomes a journal row of kind "notice" in the transaction that records it, so it reaches
every subscribed partner feed in order with the parcels' events (hub.partners.feed).
"""

from __future__ import annotations

import logging

from hub.errors import FailedPrecondition, InvalidArgument, NotFound
from hub.settings import PartnerSettings
from hub.store import Store, Tx
from hub.store.repo import devices as devices_repo
from hub.store.repo import journal
from hub.store.repo import partners as repo
from hub.store.repo.partners import IncidentRow, Window
from lockerhub.clock import Clock

log = logging.getLogger(__name__)
_HOUR_MS = 3_600_000
BROKER_DOWN = "broker_down"
STORE_DOWN = "store_down"
SITE_OFFLINE = "site_offline"
Key = tuple[str, str]  # (cause, site)


class Maintenance:
    """Maintenance windows: scheduled with at least ``partners.min_notice_h`` of notice."""

    def __init__(self, store: Store, clock: Clock, settings: PartnerSettings) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings

    async def schedule(
        self, *, site: str, starts_ms: int, ends_ms: int, reason: str, actor: str
    ) -> Window:
        """Record the window and notify every partner feed at once.

        Raises:
            InvalidArgument: the window ends before it starts, is longer than allowed or starts
                with less notice than ``partners.min_notice_h``.
            NotFound: unknown site.
        """
        now = self._clock.now_ms()
        notice_ms = int(self._settings.min_notice_h * _HOUR_MS)
        if ends_ms <= starts_ms:
            raise InvalidArgument("ends_ms: must be after starts_ms")
        if ends_ms - starts_ms > int(self._settings.max_window_h * _HOUR_MS):
            raise InvalidArgument(f"a window lasts at most {self._settings.max_window_h:g} h")
        if starts_ms < now + notice_ms:
            raise InvalidArgument(
                f"starts_ms: partners get at least {self._settings.min_notice_h:g} h of notice"
            )
        async with self._store.transaction() as tx:
            if site and not await devices_repo.site_exists(tx, site):
                raise NotFound(f"site {site!r} not found")
            window = await repo.insert_window(
                tx,
                site=site,
                starts_ms=starts_ms,
                ends_ms=ends_ms,
                reason=reason,
                actor=actor,
                now_ms=now,
            )
            await journal.notice(
                tx,
                ts_ms=now,
                site=site,
                ref=f"maintenance:{window.id}",
                kind="maintenance_scheduled",
            )
        return window

    async def cancel(self, window_id: int) -> Window:
        """Raises NotFound, or FailedPrecondition for a window already cancelled or over."""
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            window = await repo.window(tx, window_id)
            if window is None:
                raise NotFound(f"maintenance window {window_id} not found")
            if window.cancelled or window.ends_ms <= now:
                raise FailedPrecondition(f"maintenance window {window_id} is cancelled or over")
            await repo.cancel_window(tx, window_id)
            await journal.notice(
                tx,
                ts_ms=now,
                site=window.site,
                ref=f"maintenance:{window_id}",
                kind="maintenance_cancelled",
            )
            found = await repo.window(tx, window_id)
        assert found is not None
        return found

    async def list(self, after_ms: int) -> list[Window]:
        async with self._store.read() as tx:
            return await repo.windows(tx, after_ms)


class Incidents:
    """Turns the hub's health observations into incident rows with start and end.

    :meth:`observe` is called by the hub's health loop (every second of the clock). A failing
    condition opens an incident when first seen (a site: once it has been offline for
    ``partners.site_offline_after_s``, the start being when it was first seen offline) and closes
    it when it clears. While the store is down nothing can be written: the outage is kept in
    memory and recorded, start and end, when the store answers again.
    """

    def __init__(self, store: Store, clock: Clock, settings: PartnerSettings) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self._since: dict[Key, int] = {}  # failing conditions and when first seen
        self._open: dict[Key, int] = {}  # incident row ids (as committed)
        self._store_down_since = 0
        self._loaded = False

    async def observe(self, *, store_up: bool, link_up: bool) -> None:
        now = self._clock.now_ms()
        if not store_up:
            self._store_down_since = self._store_down_since or now
            if not link_up:
                self._since.setdefault((BROKER_DOWN, ""), now)
            return
        failing: set[Key] = set() if link_up else {(BROKER_DOWN, "")}
        async with self._store.read() as tx:
            failing.update((SITE_OFFLINE, s) for s in await repo.sites_all_offline(tx))
            if not self._loaded:  # incidents a previous run left open
                for row in await repo.open_incidents(tx):
                    self._open[(row.cause, row.site)] = row.id
                    self._since.setdefault((row.cause, row.site), row.started_ms)
                self._loaded = True
        for key in failing:
            self._since.setdefault(key, now)
        to_open = [
            (key, since)
            for key, since in self._since.items()
            if key in failing and key not in self._open and now - since >= self._delay(key)
        ]
        closed = [key for key in self._since if key not in failing]
        if not (to_open or self._store_down_since or any(k in self._open for k in closed)):
            for key in closed:  # cleared before it counted (a site back within its grace)
                self._since.pop(key, None)
            return  # nothing to record: no write, no commit to wake the feeds
        opened: dict[Key, int] = {}
        async with self._store.transaction() as tx:
            if self._store_down_since:
                row = await repo.insert_closed_incident(
                    tx, cause=STORE_DOWN, site="", started_ms=self._store_down_since, ended_ms=now
                )
                await _notify(tx, row, now, "incident_started")
                await _notify(tx, row, now, "incident_ended")
            for key, since in to_open:
                row = await repo.open_incident(tx, cause=key[0], site=key[1], started_ms=since)
                await _notify(tx, row, now, "incident_started")
                opened[key] = row.id
            for key in closed:
                if key in self._open:
                    await repo.close_incident(tx, self._open[key], now)
                    found = await repo.incident(tx, self._open[key])
                    assert found is not None
                    await _notify(tx, found, now, "incident_ended")
        # Memory follows the commit.
        self._store_down_since = 0
        self._open.update(opened)
        for key in closed:
            self._since.pop(key, None)
            if self._open.pop(key, None) is not None:
                log.info("incident %s %s ended", *key)

    def _delay(self, key: Key) -> int:
        return int(self._settings.site_offline_after_s * 1000) if key[0] == SITE_OFFLINE else 0

    async def list(self, from_ms: int, to_ms: int) -> list[IncidentRow]:
        async with self._store.read() as tx:
            return await repo.incidents(tx, from_ms, to_ms)


async def _notify(tx: Tx, row: IncidentRow, now: int, kind: str) -> None:
    await journal.notice(tx, ts_ms=now, site=row.site, ref=f"incident:{row.id}", kind=kind)
