"""PlanRoutes: the hub's sorted parcels -> ``routing.plan_routes`` in a worker process -> routes
and a sort plan (one chute per vehicle). The one adapter between the hub and the route planner.

The solve is CPU-bound (numba): it runs in a process pool created on first use (spawned, so the
hub's threads and sockets are not forked), never on the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self, TypeVar

from hub.errors import FailedPrecondition, InvalidArgument, NotFound
from hub.models import ParcelState
from hub.store import Store
from hub.store.repo import parcels as parcels_repo
from hub.store.repo import plans as plans_repo
from hub.store.repo import sorting as sorting_repo

_In = TypeVar("_In")
_Out = TypeVar("_Out")
MAX_VEHICLES = 500
MAX_TIME_LIMIT_S = 120
DEFAULT_TIME_LIMIT_S = 5
# Volume used when a vehicle does not say (litres): effectively "parcels are the limit".
_UNLIMITED_L = 1e9


@dataclass(frozen=True, slots=True)
class VehicleSpec:
    vehicle_id: str
    capacity_parcels: int
    capacity_volume_l: float
    battery_kwh: float
    consumption_kwh_per_km: float


@dataclass(frozen=True, slots=True)
class SiteStop:
    site: str
    lat: float
    lon: float
    parcel_ids: tuple[str, ...]
    volume_l: float


@dataclass(frozen=True, slots=True)
class PlanInput:
    depot: tuple[str, float, float]
    stops: tuple[SiteStop, ...]
    vehicles: tuple[VehicleSpec, ...]
    time_limit_s: float


@dataclass(frozen=True, slots=True)
class PlannedRoute:
    vehicle_id: str
    sites: tuple[str, ...]
    distance_km: float


@dataclass(frozen=True, slots=True)
class PlanOutput:
    routes: tuple[PlannedRoute, ...]
    total_distance_km: float
    unserved_sites: tuple[str, ...]


def solve(inp: PlanInput) -> PlanOutput:
    """Pure and picklable: runs in the worker process."""
    from routing import Depot, Fleet, PlanParams, StopSite, build_problem, plan_routes

    depot = Depot(id=inp.depot[0], lat=inp.depot[1], lon=inp.depot[2])
    stops = [
        StopSite(id=s.site, lat=s.lat, lon=s.lon, parcels=len(s.parcel_ids), volume_l=s.volume_l)
        for s in inp.stops
    ]
    fleet = [
        Fleet(
            name=v.vehicle_id,
            count=1,
            parcels=v.capacity_parcels,
            volume_l=v.capacity_volume_l or _UNLIMITED_L,
            battery_kwh=v.battery_kwh or None,
            kwh_per_km=v.consumption_kwh_per_km,
        )
        for v in inp.vehicles
    ]
    problem = build_problem(depot, stops, fleet)
    plan = plan_routes(problem, params=PlanParams(time_limit=inp.time_limit_s, seed=0))
    routes = []
    for nodes, vtype in zip(plan.routes, plan.vehicle_types, strict=True):
        path = [0, *nodes, 0]
        km = float(sum(problem.dist[a, b] for a, b in itertools.pairwise(path)))
        sites = tuple(str(problem.labels[n]) for n in nodes if 1 <= n <= len(stops))
        routes.append(PlannedRoute(inp.vehicles[vtype].vehicle_id, sites, km))
    unserved = tuple(str(problem.labels[n]) for n in plan.unserved if 1 <= n <= len(stops))
    return PlanOutput(tuple(routes), float(plan.distance), unserved)


@dataclass(frozen=True, slots=True)
class RoutePlanResult:
    routes: tuple[tuple[PlannedRoute, tuple[tuple[str, tuple[str, ...]], ...]], ...]
    total_distance_km: float
    unrouted: tuple[str, ...]
    sort_plan: tuple[tuple[str, str], ...]


class RoutePlanner:
    """Async context manager owning the worker pool."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    async def run(self, fn: Callable[[_In], _Out], arg: _In) -> _Out:
        """``fn(arg)`` in the worker process, one solve at a time."""
        loop = asyncio.get_running_loop()
        async with self._lock:  # one solve at a time: the machine's cores are shared
            return await loop.run_in_executor(self._executor(), fn, arg)

    async def plan(
        self,
        hub_site: str,
        vehicles: list[VehicleSpec],
        parcel_ids: list[str],
        time_limit_s: float,
    ) -> RoutePlanResult:
        """Routes for the given (default: all sorted) parcels.

        Raises:
            InvalidArgument: no vehicles, too many, or a bad capacity/time limit.
            NotFound: unknown hub site or parcel.
            FailedPrecondition: a named parcel is not sorted or loaded.
        """
        if not vehicles or len(vehicles) > MAX_VEHICLES:
            raise InvalidArgument(f"vehicles: 1-{MAX_VEHICLES} vehicles are required")
        if not 0 < time_limit_s <= MAX_TIME_LIMIT_S:
            raise InvalidArgument(f"time_limit_s: must be 1-{MAX_TIME_LIMIT_S}")
        async with self._store.read() as tx:
            depot = await plans_repo.site_position(tx, hub_site)
            if depot is None:
                raise NotFound(f"site {hub_site!r} not found")
            chosen = []
            if parcel_ids:
                for pid in parcel_ids:
                    p = await parcels_repo.get_parcel(tx, pid, history=False)
                    if p is None:
                        raise NotFound(f"parcel {pid!r} not found")
                    if await sorting_repo.is_held(tx, pid):
                        raise FailedPrecondition(f"parcel {pid} is held at screening")
                    if p.state not in (ParcelState.SORTED, ParcelState.LOADED):
                        raise FailedPrecondition(f"parcel {pid} is {p.state}, not sorted")
                    chosen.append(p)
            else:
                ids = await plans_repo.sorted_parcel_ids(tx)
                held = await sorting_repo.held_among(tx, ids)
                for pid in ids:
                    if pid in held:
                        continue  # held at screening: routed once an operator releases it
                    p = await parcels_repo.get_parcel(tx, pid, history=False)
                    if p is not None:
                        chosen.append(p)
            sites = await plans_repo.site_coords(tx)
        by_site: dict[str, list[str]] = {}
        volume: dict[str, float] = {}
        for p in chosen:
            by_site.setdefault(p.site, []).append(p.parcel_id)
            volume[p.site] = volume.get(p.site, 0.0) + (
                p.dims.width_mm * p.dims.height_mm * p.dims.depth_mm / 1e6
            )
        stops = tuple(
            SiteStop(s, sites[s][0], sites[s][1], tuple(ids), volume[s])
            for s, ids in sorted(by_site.items())
            if s in sites and s != hub_site
        )
        if not stops:
            return RoutePlanResult((), 0.0, tuple(p.parcel_id for p in chosen), ())
        inp = PlanInput((hub_site, *depot), stops, tuple(vehicles), time_limit_s)
        loop = asyncio.get_running_loop()
        async with self._lock:  # one solve at a time: the machine's cores are shared
            out = await loop.run_in_executor(self._executor(), solve, inp)
        parcels_of = {s.site: s.parcel_ids for s in stops}
        routes: list[tuple[PlannedRoute, tuple[tuple[str, tuple[str, ...]], ...]]] = []
        sort_plan: list[tuple[str, str]] = []
        for i, route in enumerate(out.routes):
            chute = f"CH{i + 1:02d}"
            sort_plan += [(site, chute) for site in route.sites]
            routes.append((route, tuple((site, parcels_of[site]) for site in route.sites)))
        unrouted = [pid for site in out.unserved_sites for pid in parcels_of[site]]
        unrouted += [p.parcel_id for p in chosen if p.site not in parcels_of]
        return RoutePlanResult(
            tuple(routes), out.total_distance_km, tuple(unrouted), tuple(sort_plan)
        )
