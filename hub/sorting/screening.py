"""Security screening: a station's result per parcel, holds, and their release by an operator.

A screening station (device kind ``screening_station``, docs/hub.md "Security screening") reports
``ParcelScreened`` for a parcel announced to its site or to a site it is the sorting hub of. A
hold raises a ``parcel_held`` alarm (the alarm's compartment field carries the parcel id) and a
``screening`` entry in WatchEvents; until an operator releases it (``ReleaseParcel``, audited with
reason and identity) the parcel is refused everywhere later: the hub's lines get it in their
desired state's held list and divert it to the hold chute, a ParcelSorted for it is refused, its
cabinet reservation is left out of the cabinet's desired state and a Deposited is refused, it
cannot go into a container or onto a vehicle, and PlanRoutes leaves it out.
"""

from __future__ import annotations

from hub.devices import desired
from hub.devices.alarms import AlarmService
from hub.devices.desired import DesiredStates
from hub.errors import Dropped, FailedPrecondition, NotFound
from hub.ingest import authz
from hub.metrics.catalogue import HubMetrics
from hub.parcels.lifecycle import BEFORE_DEPOSIT
from hub.store import Store, Tx
from hub.store.repo import parcels as parcels_repo
from hub.store.repo import sorting as repo
from hub.store.repo.sorting import ScreeningRow
from lockerhub.clock import Clock
from lockerhub.topics import Topic
from lockerhub.v1 import sorting_pb2

HELD, CLEAR, RELEASED = "held", "clear", "released"
ALARM = "parcel_held"


class Screening:
    """Screening results and holds on the store."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        metrics: HubMetrics,
        desired_states: DesiredStates,
        alarms: AlarmService,
    ) -> None:
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._desired = desired_states
        self._alarms = alarms

    async def screened(
        self,
        tx: Tx,
        topic: Topic,
        ev: sorting_pb2.ParcelScreened,
        scope: authz.Scope,
        *,
        sorting_hub: str,
    ) -> str:
        """Apply a station's result inside the ingest transaction; returns "clear" or "hold".

        Raises:
            Dropped: unknown parcel, a parcel already deposited (mismatch), a clear result for a
                held parcel (only an operator lifts a hold); Unauthorized: a parcel of another hub.
        """
        try:
            return await self._screened(tx, topic, ev, scope, sorting_hub)
        except Dropped as exc:
            self._metrics.sorting.screening_refused.labels(exc.reason).inc()
            raise

    async def _screened(
        self,
        tx: Tx,
        topic: Topic,
        ev: sorting_pb2.ParcelScreened,
        scope: authz.Scope,
        sorting_hub: str,
    ) -> str:
        parcel = await parcels_repo.get_parcel(tx, ev.parcel_id, history=False)
        if parcel is None:
            raise Dropped("unknown_parcel", f"{topic.device} screened an unknown parcel")
        authz.check_parcel(scope, topic, parcel, sorting_hub=sorting_hub)
        if parcel.state not in BEFORE_DEPOSIT:
            raise Dropped("mismatch", f"screening result for a parcel that is {parcel.state}")
        now = self._clock.now_ms()
        hold = ev.result == sorting_pb2.ParcelScreened.RESULT_HOLD
        if not hold:
            if await repo.is_held(tx, parcel.parcel_id):
                raise Dropped("mismatch", "a held parcel is cleared only by an operator's release")
            await repo.record_screening(
                tx, parcel.parcel_id, topic.site, topic.device, CLEAR, "", now
            )
            return "clear"
        await repo.record_screening(
            tx, parcel.parcel_id, topic.site, topic.device, HELD, ev.reason, now
        )
        await repo.journal_screening(
            tx, parcel.parcel_id, topic.site, HELD, f"device:{topic.device}", topic.device, now
        )
        await self._alarms.raise_(
            tx,
            site=topic.site,
            device=topic.device,
            kind=ALARM,
            compartment=parcel.parcel_id,
            detail=ev.reason,
            actor=f"device:{topic.device}",
        )
        await self._refresh_devices(tx, topic.site, parcel.cabinet_id, now)
        return "hold"

    def count(self, site: str, result: str) -> None:
        """Metrics of a committed result."""
        self._metrics.sorting.screened.labels(site, result).inc()
        if result == "hold":
            self._metrics.sorting.held.labels(site).inc()
            self._alarms.count(ALARM)
            self._desired.wake()

    async def release(self, parcel_id: str, *, reason: str, actor: str) -> ScreeningRow:
        """Lift a hold (the operator's identity and reason are stored and journalled).

        Raises:
            NotFound: the parcel was never screened; FailedPrecondition: it is not held.
        """
        async with self._store.transaction() as tx:
            row = await repo.screening(tx, parcel_id)
            if row is None:
                raise NotFound(f"parcel {parcel_id!r} has no screening result")
            now = self._clock.now_ms()
            if not await repo.release(tx, parcel_id, actor, reason, now):
                raise FailedPrecondition(f"parcel {parcel_id!r} is {row.status}, not held")
            await repo.journal_screening(tx, parcel_id, row.site, RELEASED, actor, row.station, now)
            await self._alarms.clear_condition(
                tx, device=row.station, kind=ALARM, compartment=parcel_id, actor=actor
            )
            parcel = await parcels_repo.get_parcel(tx, parcel_id, history=False)
            await self._refresh_devices(tx, row.site, parcel.cabinet_id if parcel else "", now)
            released = await repo.screening(tx, parcel_id)
        assert released is not None
        self._metrics.sorting.released.labels(row.site).inc()
        self._desired.wake()
        return released

    async def get(self, parcel_id: str) -> ScreeningRow:
        async with self._store.read() as tx:
            row = await repo.screening(tx, parcel_id)
        if row is None:
            raise NotFound(f"parcel {parcel_id!r} has no screening result")
        return row

    async def _refresh_devices(self, tx: Tx, site: str, cabinet: str, now: int) -> None:
        """The site's lines (held list) and the parcel's cabinet (its reservation) get a new
        desired state."""
        for line in await repo.lines_at(tx, site):
            await desired.mark(tx, line, now)
        if cabinet:
            await desired.mark(tx, cabinet, now)
