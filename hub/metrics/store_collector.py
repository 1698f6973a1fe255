"""Metrics read from the store on the hub's refresh tick: occupancy, presence, parcel flow.

Parcel flow (announcements with their green-packaging flags, lifecycle events by site, dwell time)
is counted by tailing the append-only ``parcels`` and ``parcel_transitions`` tables past a cursor
that starts at the hub's start, so counters behave like any process counter (they start at 0 when
the hub starts, and rate() handles the restart). Each tick reads at most ``batch`` rows per table.

Several hubs on one store would each count every row: only the hub holding the
``parcel-flow-metrics`` lease counts parcel flow (``count_flow``); the others leave their
counters where they are (rate 0) and restart from the newest row when they take the lease over.
So ``sum without (instance) (rate(...))`` over all hubs is the city's flow (docs/metrics.md).
"""

from __future__ import annotations

from hub.metrics.catalogue import HubMetrics, Snapshot
from hub.metrics.sorting import ContainerSnapshot, HoldSnapshot
from hub.models import ParcelState
from hub.store import Tx
from hub.store.repo import containers as containers_repo
from hub.store.repo import devices as devices_repo
from hub.store.repo import flow as flow_repo
from hub.store.repo import notices as notices_repo
from hub.store.repo import sorting as sorting_repo
from lockerhub.clock import Clock, SystemClock

# A container away from the hub and not seen for this long counts as lost (docs/hub.md).
DEFAULT_CONTAINER_LOST_AFTER_DAYS = 14.0
# A screening hold not released for this long counts as overdue: the parcel_held alarm was raised
# when it was held, so by now nobody is working the hold chute (docs/metrics.md).
DEFAULT_HOLD_OVERDUE_HOURS = 2.0
_PICKED_UP = str(ParcelState.PICKED_UP)
FLOW_LEASE = "parcel-flow-metrics"


class StoreMetrics:
    """Refreshes the hub's snapshot and flow counters from one read transaction per tick."""

    def __init__(
        self,
        metrics: HubMetrics,
        *,
        batch: int = 10_000,
        clock: Clock | None = None,
        container_lost_after_days: float = DEFAULT_CONTAINER_LOST_AFTER_DAYS,
        hold_overdue_hours: float = DEFAULT_HOLD_OVERDUE_HOURS,
    ) -> None:
        self._clock: Clock = clock or SystemClock()
        self._lost_after_ms = int(container_lost_after_days * 86_400_000)
        self._hold_overdue_ms = int(hold_overdue_hours * 3_600_000)
        self._metrics = metrics
        self._batch = batch
        self._parcel_cursor: int | None = None
        self._transition_cursor: int | None = None
        self._sites: set[str] = set()

    async def refresh(self, tx: Tx, *, count_flow: bool = True) -> None:
        """Read occupancy and presence, and count parcel flow since the last tick (only with
        ``count_flow``: this hub holds the parcel-flow lease)."""
        occupancy = await devices_repo.occupancy(tx)
        self._metrics.snapshot.update(
            Snapshot(
                compartments=occupancy.compartments,
                devices_online=occupancy.devices_online,
                devices=await devices_repo.presence(tx),
                notices_pending=await notices_repo.pending(tx),
            )
        )
        for site in await devices_repo.site_ids(tx):
            if site not in self._sites:
                self._metrics.add_site(site, (str(s) for s in ParcelState))
                self._sites.add(site)
        await self._read_holds(tx)
        if not count_flow:
            # Not the counting hub: start from the newest rows if this hub takes over.
            self._parcel_cursor = self._transition_cursor = None
            return
        await self._count_announced(tx)
        await self._count_transitions(tx)
        self._metrics.sorting.containers.snapshot = ContainerSnapshot(
            by_state=await containers_repo.by_state(tx),
            cycles=await containers_repo.cycles(tx),
            lost=await containers_repo.lost(tx, self._clock.now_ms() - self._lost_after_ms),
            share=await containers_repo.share(tx),
        )

    async def _read_holds(self, tx: Tx) -> None:
        # Read by every hub (the store is shared, like notices_pending): take max without instance.
        held, overdue = await sorting_repo.holds_in_force(
            tx, overdue_before_ms=self._clock.now_ms() - self._hold_overdue_ms
        )
        zero = dict.fromkeys(self._sites, 0)
        self._metrics.sorting.holds.snapshot = HoldSnapshot(
            held=zero | held, overdue=zero | overdue
        )

    async def _count_announced(self, tx: Tx) -> None:
        if self._parcel_cursor is None:
            self._parcel_cursor = await flow_repo.newest_parcel(tx)
            return
        for p in await flow_repo.announced_after(tx, self._parcel_cursor, limit=self._batch):
            self._metrics.parcel_announced(
                p.site,
                electronic_waybill=p.electronic_waybill,
                reusable_container=p.reusable_container,
            )
            self._parcel_cursor = p.seq

    async def _count_transitions(self, tx: Tx) -> None:
        if self._transition_cursor is None:
            self._transition_cursor = await flow_repo.newest_transition(tx)
            return
        for e in await flow_repo.events_after(tx, self._transition_cursor, limit=self._batch):
            self._metrics.parcel_events.labels(e.site, e.state).inc()
            if e.state == _PICKED_UP and e.deposited_ms is not None:
                dwell_s = max(0, e.ts_ms - e.deposited_ms) / 1000
                self._metrics.parcel_dwell.labels(e.site).observe(dwell_s)
            self._transition_cursor = e.id
