"""The retention sweeper: full phone numbers erased a configured time after a parcel closed.

A parcel closes when it is picked up, withdrawn for return, returned or cancelled; from then on
no notice needs the recipient's number. ``privacy.retention_days`` later (on the hub clock) the
sweeper deletes its ``recipient_contacts`` row and blanks the masked form, the code hash and any
plaintext left in the notice outbox (hub.store.repo.privacy.purge), then has the store leave no
trace in its files (:meth:`hub.store.Store.erase_history`: secure_delete + checkpoint TRUNCATE).

Several hubs on one store: only the holder of the ``retention-sweeper`` lease sweeps (as the
lifecycle sweeper), so the purge and the engine-wide erase run in one hub, not in each.
"""

from __future__ import annotations

import logging

from hub.models import ParcelState
from hub.parcels.lifecycle import TERMINAL
from hub.settings import PrivacySettings
from hub.store import Store
from hub.store.repo import leases
from hub.store.repo import privacy as repo
from lockerhub.clock import Clock

log = logging.getLogger(__name__)
_DAY_MS = 86_400_000
LEASE = "retention-sweeper"
# A parcel in one of these states will never notify its recipient again.
CLOSED = frozenset({*TERMINAL, ParcelState.WITHDRAWN})


class RetentionSweeper:
    """Runs :meth:`sweep_once` every ``privacy.sweep_interval_s`` of the clock (supervised)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: PrivacySettings,
        *,
        holder: str = "hub",
        lease_s: float = 15.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self._holder = holder
        self._lease_ms = int(max(lease_s, 2 * settings.sweep_interval_s) * 1000)

    async def run(self) -> None:
        while True:
            await self._clock.sleep(self._settings.sweep_interval_s)
            if await self.lead():
                await self.sweep_once()

    async def lead(self) -> bool:
        """Take or renew the retention lease; True when this hub is the one to sweep now."""
        async with self._store.transaction() as tx:
            return await leases.acquire(
                tx, LEASE, self._holder, now_ms=self._clock.now_ms(), ttl_ms=self._lease_ms
            )

    async def sweep_once(self) -> int:
        """Purge every parcel past retention (in batches); returns how many."""
        purged = 0
        while True:
            now = self._clock.now_ms()
            cutoff = now - int(self._settings.retention_days * _DAY_MS)
            async with self._store.transaction() as tx:
                due = await repo.due_purges(
                    tx, (str(s) for s in CLOSED), cutoff, self._settings.batch
                )
                for parcel_id in due:
                    await repo.purge(tx, parcel_id, now)
            purged += len(due)
            if len(due) < self._settings.batch:
                break
        if purged:
            await self._store.erase_history()
            log.info("retention: erased the recipient data of %d closed parcels", purged)
        return purged
