"""The lifecycle sweeper: pickup reminders, expiry, reservation holds, silent devices and
the resend requests for holes in a device's events that outlived ``cluster.resend_grace_s``.

Time comes from the injected Clock, and so does the sweep cadence (tests move a ManualClock).
Each step works in bounded batches, one short transaction per batch, and sends its commands only
after the commit; reminders are written to the notice outbox in the same transaction.

Several hubs on one store: only the holder of the ``lifecycle-sweeper`` lease (job_leases) sweeps,
renewing it every pass; a hub killed mid-sweep stops renewing, and another takes over once the
lease has run out (``cluster.lease_s``). Each step is also one transaction over rows it re-reads,
so a sweep overlapping another (a lease that ran out mid-pass) finds nothing left to do twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hub.couriers import records as conduct_records
from hub.devices import desired
from hub.devices.alarms import OFFLINE, AlarmService
from hub.devices.commands import CommandService, PendingCommand
from hub.devices.desired import DesiredStates
from hub.devices.gaps import Gaps
from hub.metrics.catalogue import HubMetrics
from hub.models import ParcelState
from hub.parcels.announce import ParcelService
from hub.parcels.lifecycle import record_transition
from hub.parcels.notify import PickupNotice
from hub.parcels.outbox import NoticeOutbox
from hub.settings import LifecycleSettings
from hub.store import Store
from hub.store.repo import devices as devices_repo
from hub.store.repo import leases
from hub.store.repo import parcels as parcels_repo
from lockerhub.clock import Clock

log = logging.getLogger(__name__)
_HOUR_MS = 3_600_000
LEASE = "lifecycle-sweeper"


@dataclass(frozen=True, slots=True)
class SweepCounts:
    reminded: int = 0
    expired: int = 0
    released: int = 0
    silent: int = 0
    resends: int = 0


class Sweeper:
    """Runs :meth:`sweep_once` every ``sweep_interval_s`` of the clock; supervised by the hub."""

    def __init__(
        self,
        store: Store,
        parcels: ParcelService,
        commands: CommandService,
        desired_states: DesiredStates,
        alarms: AlarmService,
        outbox: NoticeOutbox,
        clock: Clock,
        settings: LifecycleSettings,
        metrics: HubMetrics,
        *,
        holder: str = "hub",
        lease_s: float = 15.0,
        gaps: Gaps | None = None,
        pile_silent_after_s: float | None = None,
    ) -> None:
        self._gaps = gaps
        # A pile is heard from only at its heartbeat (OCPP), which may be rarer than a cabinet's
        # telemetry: judged silent by the heartbeat, never before offline_after_s.
        self._pile_silent_after_s = max(
            settings.offline_after_s, pile_silent_after_s or settings.offline_after_s
        )
        self._store = store
        self._holder = holder
        self._lease_ms = int(max(lease_s, 2 * settings.sweep_interval_s) * 1000)
        self._parcels = parcels
        self._commands = commands
        self._desired = desired_states
        self._alarms = alarms
        self._outbox = outbox
        self._clock = clock
        self._settings = settings
        self._metrics = metrics

    async def run(self) -> None:
        while True:
            await self._clock.sleep(self._settings.sweep_interval_s)
            if await self.lead():
                await self.sweep_once()

    async def lead(self) -> bool:
        """Take or renew the sweeper lease; True when this hub is the one to sweep now."""
        async with self._store.transaction() as tx:
            return await leases.acquire(
                tx, LEASE, self._holder, now_ms=self._clock.now_ms(), ttl_ms=self._lease_ms
            )

    async def sweep_once(self) -> SweepCounts:
        """One pass over every step; returns how much each did."""
        counts = SweepCounts(
            reminded=await self._reminders(),
            expired=await self._expiries(),
            released=await self._holds(),
            silent=await self._silent(),
            resends=await self._resends(),
        )
        if counts.expired or counts.released:
            self._desired.wake()
        return counts

    async def _reminders(self) -> int:
        now = self._clock.now_ms()
        horizon = now + int(self._settings.reminder_before_h * _HOUR_MS)
        reminded = 0
        async with self._store.transaction() as tx:
            for p in await parcels_repo.due_reminders(tx, horizon, self._settings.batch):
                if p.pickup_deadline_ms <= now:
                    continue  # too late for a reminder: the expiry step takes it
                await parcels_repo.mark_reminded(tx, p.parcel_id)
                # Stored with the mark, delivered by the outbox (with the phone) after the commit.
                notice = PickupNotice(
                    p.parcel_id,
                    "",
                    "",
                    p.site,
                    p.cabinet_id,
                    p.compartment_id,
                    p.pickup_deadline_ms,
                    kind="reminder",
                )
                await self._outbox.add(tx, notice, now)
                reminded += 1
        if reminded:
            self._outbox.wake()
        return reminded

    async def _expiries(self) -> int:
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            due = await parcels_repo.due_expiries(tx, now, self._settings.batch)
            for p in due:
                await record_transition(
                    tx,
                    p.parcel_id,
                    p.state,
                    ParcelState.EXPIRED,
                    ts_ms=now,
                    actor="hub",
                    location=f"{p.site}/{p.cabinet_id}/{p.compartment_id}",
                    detail="pickup deadline passed",
                )
                await conduct_records.on_expired(tx, p.parcel_id, now)
                # The code stops working: the cabinet drops it with the next desired state.
                await parcels_repo.delete_code_hash(tx, p.parcel_id)
                await desired.mark(tx, p.cabinet_id, now)
        if due:
            self._metrics.parcel_transitions.labels(str(ParcelState.EXPIRED)).inc(len(due))
        return len(due)

    async def _holds(self) -> int:
        now = self._clock.now_ms()
        pending: list[PendingCommand] = []
        async with self._store.transaction() as tx:
            due = await parcels_repo.due_holds(tx, now, self._settings.batch)
            for p in due:
                command = await self._parcels.release_hold(tx, p, now)
                if command is not None:
                    pending.append(command)
        back = sum(p.state == ParcelState.RESERVED for p in due)
        if back:
            self._metrics.parcel_transitions.labels(str(ParcelState.ANNOUNCED)).inc(back)
        for command in pending:
            await self._commands.publish(command)
        return len(due)

    async def _silent(self) -> int:
        """Hub-side inactivity: a device said online but silent too long raises an alarm (its
        presence stays what its last status said; the alarm clears on its next message)."""
        now = self._clock.now_ms()
        devices_s, piles_s = self._settings.offline_after_s, self._pile_silent_after_s
        raised = 0
        async with self._store.transaction() as tx:
            silent = await devices_repo.silent_devices(
                tx, now - int(devices_s * 1000), piles_before_ms=now - int(piles_s * 1000)
            )
            for device, site, pile in silent:
                raised += await self._alarms.raise_(
                    tx,
                    site=site,
                    device=device,
                    kind=OFFLINE,
                    detail=f"silent for more than {piles_s if pile else devices_s:g} s",
                )
        self._alarms.count(OFFLINE, raised)
        return raised

    async def _resends(self) -> int:
        """Ask devices for the events still missing from holes marked before the grace."""
        if self._gaps is None:
            return 0
        pending = await self._gaps.sweep(self._store, self._clock.now_ms(), self._settings.batch)
        for command in pending:
            await self._commands.publish(command)
        return len(pending)
