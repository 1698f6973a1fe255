"""Alarms from devices and from the hub itself: raise (deduplicated), acknowledge, clear.

One open alarm per (device, kind, compartment): a repeated report of the same condition updates
the open alarm instead of piling up rows. Every status change is journalled for WatchEvents.
"""

from __future__ import annotations

from hub.errors import FailedPrecondition, NotFound
from hub.metrics.catalogue import HubMetrics
from hub.models import AlarmRecord, AlarmStatus
from hub.store import Store, Tx
from hub.store.repo import alarms as repo
from hub.store.repo import journal
from lockerhub.clock import Clock

MAX_LIST = 1000
# A device offline (its will) or silent too long: raised by the hub, cleared by its next message.
OFFLINE = "cabinet_offline"


class AlarmService:
    """Alarm workflow on the store; the ``tx`` methods run inside the caller's transaction."""

    def __init__(self, store: Store, clock: Clock, metrics: HubMetrics) -> None:
        self._store = store
        self._clock = clock
        self._metrics = metrics

    async def raise_(
        self,
        tx: Tx,
        *,
        site: str,
        device: str,
        kind: str,
        compartment: str = "",
        detail: str = "",
        device_ts_ms: int = 0,
        actor: str = "hub",
    ) -> bool:
        """Raise an alarm unless the same condition is already open; True when a new one.

        The caller counts a new alarm with :meth:`count` once its transaction committed (a
        rolled-back or retried transaction must not count it twice).
        """
        now = self._clock.now_ms()
        existing = await repo.find_open(tx, device, kind, compartment)
        if existing is not None:
            if detail and detail != existing.detail:
                await repo.set_detail(tx, existing.alarm_id, detail, now)
            return False
        alarm_id = await repo.insert(
            tx,
            site=site,
            device=device,
            kind=kind,
            compartment=compartment,
            detail=detail,
            device_ts_ms=device_ts_ms or now,
            now_ms=now,
        )
        await journal.alarm_changed(
            tx,
            alarm_id=alarm_id,
            status=str(AlarmStatus.RAISED),
            ts_ms=now,
            site=site,
            alarm_kind=kind,
            device=device,
            compartment=compartment,
            actor=actor,
        )
        return True

    def count(self, kind: str, raised: int = 1) -> None:
        """Count ``raised`` new alarms of ``kind`` (after the commit that stored them)."""
        if raised:
            self._metrics.alarms.labels(kind).inc(raised)

    async def clear_condition(
        self, tx: Tx, *, device: str, kind: str, compartment: str = "", actor: str = "hub"
    ) -> bool:
        """The condition is gone (device said so, or the hub saw it recover)."""
        existing = await repo.find_open(tx, device, kind, compartment)
        if existing is None:
            return False
        await self._set(tx, existing, AlarmStatus.CLEARED, actor)
        return True

    async def _set(self, tx: Tx, alarm: AlarmRecord, status: AlarmStatus, actor: str) -> None:
        now = self._clock.now_ms()
        await repo.set_status(tx, alarm.alarm_id, str(status), now, by=actor)
        await journal.alarm_changed(
            tx,
            alarm_id=alarm.alarm_id,
            status=str(status),
            ts_ms=now,
            site=alarm.site,
            alarm_kind=alarm.kind,
            device=alarm.device_id,
            compartment=alarm.compartment_id,
            actor=actor,
        )

    async def acknowledge(self, alarm_id: int, *, actor: str) -> AlarmRecord:
        """An operator has seen the alarm (idempotent).

        Raises:
            NotFound: no such alarm.
            FailedPrecondition: the alarm is already cleared.
        """
        async with self._store.transaction() as tx:
            alarm = await self._get(tx, alarm_id)
            if alarm.status == AlarmStatus.CLEARED:
                raise FailedPrecondition(f"alarm {alarm_id} is already cleared")
            if alarm.status == AlarmStatus.RAISED:
                await self._set(tx, alarm, AlarmStatus.ACKNOWLEDGED, actor)
            return await self._get(tx, alarm_id)

    async def clear(self, alarm_id: int, *, actor: str) -> AlarmRecord:
        """An operator clears the alarm (idempotent on a cleared one).

        Raises:
            NotFound: no such alarm.
        """
        async with self._store.transaction() as tx:
            alarm = await self._get(tx, alarm_id)
            if alarm.status != AlarmStatus.CLEARED:
                await self._set(tx, alarm, AlarmStatus.CLEARED, actor)
            return await self._get(tx, alarm_id)

    async def list(self, *, site: str, include_cleared: bool) -> list[AlarmRecord]:
        async with self._store.read() as tx:
            return await repo.list_alarms(
                tx, site=site, include_cleared=include_cleared, limit=MAX_LIST
            )

    @staticmethod
    async def _get(tx: Tx, alarm_id: int) -> AlarmRecord:
        alarm = await repo.get(tx, alarm_id)
        if alarm is None:
            raise NotFound(f"alarm {alarm_id} not found")
        return alarm
