"""The notice outbox worker: delivers stored recipient notices at least once, off the ingest path.

A notice is written as a row in the transaction of the change that causes it (a deposit, a
reminder, a reissued code: :meth:`NoticeOutbox.add`), so a crash between that commit and the
send loses nothing. The worker (the supervised ``notice-outbox`` loop) sends due rows one by one
through the :class:`~hub.parcels.notify.Notifier` with the row's idempotency key, marks them
delivered (erasing the plaintext code) or schedules a retry with a jittered exponential backoff,
all measured on the injected clock. A slow or hung notifier delays only other notices: ingestion
never waits for it.

Several hubs share the table: a hub sends a notice only after claiming its row (one conditional
UPDATE, :func:`hub.store.repo.notices.claim`), which pushes the row's next attempt past the send
timeout plus ``cluster.lease_s``; so two hubs never send one notice at the same time, and the
notice of a hub killed mid-send becomes due again for another hub once that claim runs out.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

from hub.errors import StoreUnavailable
from hub.metrics.catalogue import HubMetrics
from hub.parcels.notify import Notifier, PickupNotice
from hub.settings import NotifySettings
from hub.store import Store, Tx
from hub.store.repo import notices as repo
from hub.store.repo import privacy as privacy_repo
from lockerhub.backoff import Backoff
from lockerhub.clock import Clock
from lockerhub.supervise import stop

log = logging.getLogger(__name__)
_BATCH = 100
# How often the outcome of a send waits for a store that does not answer (a restart, a failover).
_STORE_AWAY_S = 0.5
# The audit actor of the notifier's reads of full phone numbers.
NOTIFIER_ACTOR = "hub:notifier"


class NoticeOutbox:
    """Owns the notice outbox table's delivery; :meth:`add` runs in the caller's transaction."""

    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        clock: Clock,
        settings: NotifySettings,
        metrics: HubMetrics,
        *,
        holder: str = "hub",
        lease_s: float = 15.0,
    ) -> None:
        self._store = store
        self._holder = holder
        self._claim_ms = int((settings.timeout_s + lease_s) * 1000)
        self._notifier = notifier
        self._clock = clock
        self._settings = settings
        self._metrics = metrics
        self._wake = asyncio.Event()

    @staticmethod
    async def add(tx: Tx, notice: PickupNotice, now_ms: int) -> str:
        """Store ``notice`` for delivery (inside the caller's transaction); returns its
        idempotency key. Call :meth:`wake` after the commit."""
        key = f"{notice.kind}-{uuid.uuid4().hex}"
        await repo.add(
            tx,
            key=key,
            parcel_id=notice.parcel_id,
            kind=notice.kind,
            code=notice.code,
            site=notice.site,
            cabinet=notice.cabinet,
            compartment=notice.compartment,
            deadline_ms=notice.deadline_ms,
            now_ms=now_ms,
        )
        return key

    def wake(self) -> None:
        """New notices were committed: send them now."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver whenever woken, and every ``notify.poll_s`` on the clock (due retries).

        First, notices this hub id had claimed (a previous run of it, killed mid-send) are due
        again at once rather than when the claim runs out.
        """
        async with self._store.transaction() as tx:
            await repo.reclaim(tx, self._holder, self._clock.now_ms())
        self._wake.set()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._timer(), name="notice-outbox-timer")
            while True:
                await self._wake.wait()
                self._wake.clear()
                await self.deliver_due()

    async def _timer(self) -> None:
        while True:
            await self._clock.sleep(self._settings.poll_s)
            self._wake.set()

    async def deliver_due(self) -> int:
        """Try every due notice once; returns how many were delivered."""
        delivered = 0
        while True:
            now = self._clock.now_ms()
            async with self._store.read() as tx:  # no write lock while nothing is due
                if not await repo.due(tx, now, 1):
                    return delivered
            # The claim, the read of full numbers and its audit commit together
            # (docs/security.md).
            async with self._store.transaction() as tx:
                batch = await repo.due(tx, now, _BATCH)
                mine = []
                for row in batch:
                    if not await repo.claim(
                        tx, row.row_id, self._holder, now_ms=now, until_ms=now + self._claim_ms
                    ):
                        continue  # another hub sends it
                    mine.append(row)
                    if row.phone:
                        await privacy_repo.record_read(
                            tx,
                            ts_ms=now,
                            actor=NOTIFIER_ACTOR,
                            parcel_id=row.parcel_id,
                            purpose=f"{row.kind} notice {row.key}",
                        )
            for row in mine:
                delivered += await self._deliver(row)
            if len(batch) < _BATCH:
                return delivered

    async def _deliver(self, row: repo.PendingNotice) -> int:
        notice = PickupNotice(
            row.parcel_id,
            row.phone,
            row.code,
            row.site,
            row.cabinet,
            row.compartment,
            row.deadline_ms,
            kind=row.kind,
            key=row.key,
        )
        try:
            await self._call(notice)
        except Exception as exc:  # any notifier failure: retry later
            backoff = Backoff(self._settings.retry_min_s, self._settings.retry_max_s)
            backoff.attempt = row.attempts
            retry_ms = self._clock.now_ms() + int(backoff.next_delay() * 1000)
            error = repr(exc)
            await self._record(
                lambda tx: repo.mark_failed(tx, row.row_id, next_attempt_ms=retry_ms, error=error)
            )
            self._metrics.notifications_failed.inc()
            log.warning(  # the key, never the parcel, the phone or the code
                "notice %s not delivered, attempt %d: %s",
                row.key,
                row.attempts + 1,
                type(exc).__name__,
            )
            return 0
        now = self._clock.now_ms()
        await self._record(lambda tx: repo.mark_delivered(tx, row.row_id, now))
        self._metrics.notices_delivered.labels(row.kind).inc()
        return 1

    async def _record(self, write: Callable[[Tx], Awaitable[object]]) -> None:
        """Commit a send's outcome, waiting out a store that is away (a restart, a failover):
        the notice went out, and an outcome lost to the outage would send it again once the
        claim ran out."""
        waits = 0
        while True:
            try:
                async with self._store.transaction() as tx:
                    await write(tx)
                return
            except StoreUnavailable as exc:
                if waits % 20 == 0:  # every 10 s: a stalled outbox shows in the log
                    log.warning("store away, a notice's outcome waits for it: %s", exc)
                waits += 1
                await asyncio.sleep(_STORE_AWAY_S)  # the outside world: real time

    async def _call(self, notice: PickupNotice) -> None:
        """``notifier.notify(notice)``, failed with TimeoutError after ``notify.timeout_s`` of
        the clock (the notifier's task is cancelled)."""
        send = asyncio.ensure_future(self._notifier.notify(notice))
        timer = asyncio.ensure_future(self._clock.sleep(self._settings.timeout_s))
        try:
            await asyncio.wait((send, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            timed_out = not send.done()
            for task in (timer, send):
                if not task.done():
                    await stop(task)
        if timed_out:
            raise TimeoutError(f"notifier took more than {self._settings.timeout_s:g} s")
        send.result()
