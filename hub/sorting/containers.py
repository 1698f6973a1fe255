"""Reusable containers (bags, boxes, cages) as tracked assets.

A container is filled at a chute of a hub's sorting line, loaded onto a vehicle, unloaded at a
site, emptied there, loaded again empty and returned to the hub (one cycle). Lines report FILLED
and RETURNED as device events; the driver app reports any movement through
``SortingService.RecordContainer``. Each movement names where it happens, and must start where
the hub last saw the container: a container cannot be filled at one place while the hub knows it
on a vehicle or at another site (refused: ``container_conflict``, with the place the hub knows).
"""

from __future__ import annotations

from dataclasses import replace

from hub.errors import Dropped, FailedPrecondition, HubError, InvalidArgument, NotFound
from hub.metrics.catalogue import HubMetrics
from hub.models import ParcelState
from hub.parcels.lifecycle import record_transition
from hub.store import Store, Tx
from hub.store.repo import containers as repo
from hub.store.repo import parcels as parcels_repo
from hub.store.repo import sorting as sorting_repo
from hub.store.repo.containers import ContainerRow
from lockerhub.clock import Clock
from lockerhub.v1 import sorting_pb2

Action = sorting_pb2.ContainerAction
# Actions a sorting line may report itself (at its own site).
LINE_ACTIONS = frozenset({Action.CONTAINER_ACTION_FILLED, Action.CONTAINER_ACTION_RETURNED})


def type_name(value: int) -> str:
    return sorting_pb2.ContainerType.Name(value).removeprefix("CONTAINER_TYPE_").lower()  # type: ignore[arg-type]


def _where(c: ContainerRow) -> str:
    return f"on vehicle {c.vehicle}" if c.state == "loaded" else f"{c.state} at {c.site}"


def _conflict(c: ContainerRow, doing: str) -> Dropped:
    return Dropped(
        "container_conflict", f"container {c.container_id} is {_where(c)}: cannot {doing}"
    )


class Containers:
    """Container movements on the store."""

    def __init__(self, store: Store, clock: Clock, metrics: HubMetrics) -> None:
        self._store = store
        self._clock = clock
        self._metrics = metrics

    async def record(self, ev: sorting_pb2.ContainerMoved, *, actor: str) -> ContainerRow:
        """The driver app's report (gRPC). Raises InvalidArgument / FailedPrecondition."""
        if not ev.site:
            raise InvalidArgument("move.site is required")
        try:
            async with self._store.transaction() as tx:
                await self.moved(tx, ev, site=ev.site, actor=actor)
                row = await repo.get(tx, ev.container_id)
        except Dropped as exc:
            self._metrics.sorting.container_refused.labels(_label(exc.reason)).inc()
            raise _as_api_error(exc) from exc
        assert row is not None
        return row

    async def moved(
        self, tx: Tx, ev: sorting_pb2.ContainerMoved, *, site: str, actor: str, line: bool = False
    ) -> None:
        """Apply one movement at ``site`` inside ``tx``.

        Raises:
            Dropped: ``container_conflict`` (it is elsewhere), ``held``, ``unknown_parcel``,
                ``mismatch`` (a parcel not sorted, an action a line may not report, a site that
                is not the sender's).
        """
        if line and (ev.action not in LINE_ACTIONS or (ev.site and ev.site != site)):
            raise Dropped("mismatch", "a line reports only FILLED and RETURNED, at its own site")
        now = self._clock.now_ms()
        c = await repo.get(tx, ev.container_id)
        if c is not None and c.type != type_name(ev.type):
            raise Dropped("mismatch", f"container {c.container_id} is a {c.type}")
        if ev.action == Action.CONTAINER_ACTION_FILLED:
            new = await self._fill(tx, c, ev, site, now)
        elif ev.action == Action.CONTAINER_ACTION_LOADED:
            new = await self._load(tx, c, ev, site, actor, now)
        elif c is None:
            raise Dropped("container_conflict", f"container {ev.container_id} was never filled")
        elif ev.action == Action.CONTAINER_ACTION_UNLOADED:
            if c.state != "loaded" or c.vehicle != ev.vehicle_id:
                raise _conflict(c, f"be unloaded from vehicle {ev.vehicle_id}")
            inside = await repo.contents(tx, c.container_id)
            if not inside:
                raise Dropped(
                    "mismatch", f"container {c.container_id} is empty: RETURNED, not UNLOADED"
                )
            new = replace(c, state="at_site", site=site, vehicle="")
        elif ev.action == Action.CONTAINER_ACTION_EMPTIED:
            if c.state != "at_site" or c.site != site:
                raise _conflict(c, f"be emptied at {site}")
            await repo.empty(tx, c.container_id, now)
            new = replace(c, state="empty_at_site")
        else:  # RETURNED
            if c.state != "loaded" or await repo.contents(tx, c.container_id):
                raise _conflict(c, f"be returned empty to {site}")
            new = replace(c, state="at_hub", site=site, vehicle="", cycles=c.cycles + 1)
        await repo.put(tx, new, now)

    async def _fill(
        self,
        tx: Tx,
        c: ContainerRow | None,
        ev: sorting_pb2.ContainerMoved,
        site: str,
        now: int,
    ) -> ContainerRow:
        if c is not None and (c.state != "at_hub" or c.site != site):
            raise _conflict(c, f"be filled at {site}")
        pairs = []
        for pid in ev.parcel_ids:
            parcel = await parcels_repo.get_parcel(tx, pid, history=False)
            if parcel is None:
                raise Dropped("unknown_parcel", "a container was filled with an unknown parcel")
            if await sorting_repo.is_held(tx, pid):
                raise Dropped("held", "a parcel held at screening cannot go into a container")
            if parcel.state != ParcelState.SORTED:
                raise Dropped("mismatch", f"a container takes sorted parcels, not {parcel.state}")
            other = await repo.holder(tx, pid)
            if other:
                raise Dropped("container_conflict", f"a parcel is already in container {other}")
            if not await repo.ever_contained(tx, pid):
                await repo.count_share(tx, parcel.site, contained=1)
            pairs.append((pid, parcel.site))
        await repo.fill(tx, ev.container_id, pairs, now)
        return ContainerRow(
            container_id=ev.container_id,
            type=type_name(ev.type),
            state="filled",
            site=site,
            vehicle="",
            home_site=c.home_site if c else site,
            cycles=c.cycles if c else 0,
            last_seen_ms=now,
        )

    async def _load(
        self,
        tx: Tx,
        c: ContainerRow | None,
        ev: sorting_pb2.ContainerMoved,
        site: str,
        actor: str,
        now: int,
    ) -> ContainerRow:
        if not ev.vehicle_id:
            raise Dropped("mismatch", "LOADED needs the vehicle")
        if c is None or c.state not in ("filled", "empty_at_site") or c.site != site:
            if c is None:
                raise Dropped(
                    "container_conflict", f"container {ev.container_id} is not known here"
                )
            raise _conflict(c, f"be loaded at {site}")
        for pid in await repo.contents(tx, c.container_id):
            if await sorting_repo.is_held(tx, pid):
                raise Dropped("held", "a parcel held at screening cannot be loaded")
            parcel = await parcels_repo.get_parcel(tx, pid, history=False)
            if parcel is not None and parcel.state == ParcelState.SORTED:
                await record_transition(
                    tx,
                    pid,
                    parcel.state,
                    ParcelState.LOADED,
                    ts_ms=now,
                    actor=actor,
                    location=f"{site}/{ev.vehicle_id}/{c.container_id}",
                )
        return replace(c, state="loaded", site="", vehicle=ev.vehicle_id)

    async def get(self, container_id: str) -> ContainerRow | None:
        async with self._store.read() as tx:
            return await repo.get(tx, container_id)

    async def contents(self, container_id: str) -> list[str]:
        async with self._store.read() as tx:
            return await repo.contents(tx, container_id)


def _label(reason: str) -> str:
    return {"container_conflict": "conflict"}.get(
        reason, reason if reason in ("held", "unknown_parcel") else "invalid"
    )


def _as_api_error(exc: Dropped) -> HubError:
    if exc.reason == "unknown_parcel":
        return NotFound(str(exc))
    return FailedPrecondition(str(exc))
