"""PlanRoutes from the hub's own data: registered vehicles, sorted parcels, expired parcels and
empty containers to collect, free charging piles; plans stored with an id, shown again and
re-planned without a vehicle that dropped out (docs/dispatch.md)."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import uuid
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.protobuf import json_format

from hub.errors import FailedPrecondition, InvalidArgument, NotFound
from hub.metrics.dispatch import DispatchMetrics, RouteFigures
from hub.planning.containers import ContainerSource, TrackedContainers
from hub.planning.dispatch import (
    DispatchInput,
    DispatchOutput,
    PileInput,
    StopInput,
    VehicleInput,
    solve,
)
from hub.planning.routes import MAX_TIME_LIMIT_S, RoutePlanner
from hub.settings import HubSettings
from hub.settings.dispatch import ALL_DAY, parse_window
from hub.store import Store, Tx
from hub.store.repo import plans as plans_repo
from hub.store.repo import vehicles as vehicles_repo
from hub.vehicles import Vehicle
from lockerhub.clock import Clock
from lockerhub.v1 import dispatch_pb2

if TYPE_CHECKING:
    from hub.ocpp import PileState

MAX_PARCELS = 100_000
_KEEP_SOLUTIONS = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanRequest:
    hub_site: str
    start_ms: int
    time_limit_s: float
    parcel_ids: tuple[str, ...] = ()
    containers: Mapping[str, int]
    exclude: frozenset[str] = frozenset()


def _minutes(ms: int, tz: zoneinfo.ZoneInfo) -> tuple[int, float]:
    """(the local midnight before ``ms`` in epoch ms, minutes since it)."""
    local = dt.datetime.fromtimestamp(ms / 1000, tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(midnight.timestamp() * 1000), (local - midnight).total_seconds() / 60


class DispatchPlanner:
    """Builds, solves (in the RoutePlanner's worker), checks and stores route plans."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: HubSettings,
        planner: RoutePlanner,
        *,
        metrics: DispatchMetrics | None = None,
        piles: Callable[[], Iterable[PileState]] | None = None,
        containers: ContainerSource | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self._planner = planner
        self._metrics = metrics
        self._piles = piles or (lambda: ())
        self._containers = containers or TrackedContainers()
        self._sites = {s.id: s for s in settings.sites}
        self._zones = {
            z.id: (
                parse_window(z.window, "zones.window"),
                {e.vehicle_class: parse_window(e.window, "zones.window") for e in z.exemptions},
            )
            for z in settings.zones
        }
        self._pile_kw = {
            d.id: d.power_kw for d in settings.devices if d.kind == "charging_pile" and d.power_kw
        }
        self._tz = zoneinfo.ZoneInfo(settings.dispatch.timezone)
        self._solutions: collections.OrderedDict[str, tuple[DispatchInput, DispatchOutput]] = (
            collections.OrderedDict()
        )

    @property
    def zones_enabled(self) -> bool:
        return bool(self._zones)

    def solution(self, plan_id: str) -> tuple[DispatchInput, DispatchOutput] | None:
        """The problem and solution of a recent plan (for checks and diagnostics)."""
        return self._solutions.get(plan_id)

    def _hours(self, site: str) -> tuple[float, float]:
        s = self._sites.get(site)
        return parse_window(s.hours, "sites.hours") if s is not None else ALL_DAY

    async def _gather(
        self, tx: Tx, req: PlanRequest, start_min: float
    ) -> tuple[DispatchInput, list[Vehicle]]:
        if await plans_repo.site_position(tx, req.hub_site) is None:
            raise NotFound(f"site {req.hub_site!r} not found")
        coords = await plans_repo.site_coords(tx)
        deliver = await plans_repo.parcels_to_deliver(tx, req.parcel_ids, limit=MAX_PARCELS)
        if req.parcel_ids:
            missing = sorted(set(req.parcel_ids) - {p.parcel_id for p in deliver})
            if missing:
                raise NotFound(f"parcels not found: {missing[:10]}")
            wrong = [p.parcel_id for p in deliver if p.state not in ("sorted", "loaded")]
            if wrong:
                raise FailedPrecondition(f"parcels not sorted or loaded: {wrong[:10]}")
        collect = await plans_repo.parcels_to_collect(tx, limit=MAX_PARCELS)
        containers = await self._containers.empty_containers(tx, req.containers)
        by_site: dict[str, dict[str, list[plans_repo.PlanParcel]]] = {}
        for p in deliver:
            by_site.setdefault(p.site, {}).setdefault("deliver", []).append(p)
        for p in collect:
            by_site.setdefault(p.site, {}).setdefault("collect", []).append(p)
        for site, n in containers.items():
            if n > 0:
                by_site.setdefault(site, {})
        stops = []
        for site in sorted(by_site):
            if site == req.hub_site or site not in coords:
                continue
            d, c = by_site[site].get("deliver", []), by_site[site].get("collect", [])
            conf = self._sites.get(site)
            stops.append(
                StopInput(
                    site=site,
                    lat=coords[site][0],
                    lon=coords[site][1],
                    zone=conf.zone if conf is not None else "",
                    hours=self._hours(site),
                    deliver=tuple(p.parcel_id for p in d),
                    deliver_volume_l=sum(p.volume_l for p in d),
                    collect=tuple(p.parcel_id for p in c),
                    collect_volume_l=sum(p.volume_l for p in c),
                    containers=containers.get(site, 0),
                )
            )
        vehicles = await vehicles_repo.list_vehicles(tx, depot=req.hub_site)
        inp = DispatchInput(
            depot=(req.hub_site, *coords[req.hub_site]),
            depot_hours=self._hours(req.hub_site),
            start_min=start_min,
            stops=tuple(stops),
            piles=tuple(self._free_piles(coords)),
            vehicles=tuple(
                VehicleInput(
                    vehicle_id=v.vehicle_id,
                    vehicle_class=str(v.vehicle_class),
                    capacity_parcels=v.capacity_parcels,
                    capacity_volume_l=v.capacity_volume_l,
                    battery_kwh=v.battery_kwh,
                    consumption_kwh_per_km=v.consumption_kwh_per_km,
                    permits=frozenset(v.permit_zones),
                )
                for v in vehicles
                if not v.unusable_reason(req.start_ms) and v.vehicle_id not in req.exclude
            ),
            zones=self._zones,
            time_limit_s=req.time_limit_s,
            speed_kmh=self._settings.dispatch.speed_kmh,
            detour=self._settings.dispatch.detour,
            container_volume_l=self._settings.dispatch.container_volume_l,
            service_min=self._settings.dispatch.service_min,
            service_per_parcel_min=self._settings.dispatch.service_per_parcel_min,
        )
        return inp, vehicles

    def _free_piles(self, coords: Mapping[str, tuple[float, float]]) -> list[PileInput]:
        """Online piles with a connector Available, at a known site (OCPP 1.6 section 7.7)."""
        out = []
        for p in self._piles():
            free = any(c.status == "Available" for cid, c in p.connectors.items() if cid != 0)
            if not (p.online and free and p.site in coords):
                continue
            conf = self._sites.get(p.site)
            hours = self._hours(p.site)
            ebike = None
            if conf is not None and conf.ebike_charging_hours:
                lo, hi = parse_window(conf.ebike_charging_hours, "sites.ebike_charging_hours")
                if max(lo, hours[0]) < min(hi, hours[1]):
                    ebike = (max(lo, hours[0]), min(hi, hours[1]))
            out.append(
                PileInput(
                    pile_id=p.pile_id,
                    site=p.site,
                    lat=coords[p.site][0],
                    lon=coords[p.site][1],
                    power_kw=self._pile_kw.get(p.pile_id, self._settings.dispatch.default_pile_kw),
                    window=hours,
                    ebike_window=ebike,
                )
            )
        return out

    async def plan(
        self, req: PlanRequest, *, actor: str, replaces: str = "", reason: str = ""
    ) -> dispatch_pb2.PlanRoutesResponse:
        """Plan, check, store and answer.

        Raises:
            InvalidArgument: a bad time limit or start. NotFound: unknown hub site or parcel.
            FailedPrecondition: a named parcel is not sorted or loaded.
        """
        if not 0 < req.time_limit_s <= MAX_TIME_LIMIT_S:
            raise InvalidArgument(f"time_limit_s: must be 1-{MAX_TIME_LIMIT_S}")
        if req.start_ms == 0:
            req = dataclasses.replace(req, start_ms=self._clock.now_ms())
        midnight_ms, start_min = _minutes(req.start_ms, self._tz)
        async with self._store.read() as tx:
            inp, vehicles = await self._gather(tx, req, start_min)
        out = await self._planner.run(solve, inp)
        by_id = {v.vehicle_id: v for v in vehicles}
        violations = [*out.violations, *independent_check(inp, out, by_id)]
        plan_id = uuid.uuid4().hex[:16]
        reply = _reply(inp, out, by_id, midnight_ms)
        reply.plan_id = plan_id
        reply.created_ms = self._clock.now_ms()
        reply.replaces_plan_id = replaces
        reply.skipped_vehicles.extend(
            dispatch_pb2.SkippedVehicle(
                vehicle_id=v.vehicle_id,
                reason="excluded from this plan"
                if v.vehicle_id in req.exclude
                else v.unusable_reason(req.start_ms),
            )
            for v in vehicles
            if v.vehicle_id in req.exclude or v.unusable_reason(req.start_ms)
        )
        if violations:
            if self._metrics is not None:
                self._metrics.violations.inc(len(violations))
            raise FailedPrecondition(f"the plan breaks a rule and was not kept: {violations[:3]}")
        stored = _request_json(req)
        async with self._store.transaction() as tx:
            await plans_repo.insert_plan(
                tx,
                plan_id=plan_id,
                hub_site=req.hub_site,
                created_ms=reply.created_ms,
                replaces=replaces,
                actor=actor,
                reason=reason,
                request=stored,
                reply=json_format.MessageToJson(reply, indent=None),
                vehicles=[r.vehicle_id for r in reply.routes],
            )
        self._solutions[plan_id] = (inp, out)
        while len(self._solutions) > _KEEP_SOLUTIONS:
            self._solutions.popitem(last=False)
        if self._metrics is not None:
            self._metrics.plan_made(
                req.hub_site,
                (
                    RouteFigures(
                        vehicle_class=str(by_id[r.vehicle_id].vehicle_class),
                        new_energy=by_id[r.vehicle_id].new_energy,
                        parcels=r.delivered_parcels,
                        distance_km=r.distance_km,
                        energy_kwh=r.energy_kwh,
                        charge_kwh=r.charged_kwh,
                    )
                    for r in reply.routes
                ),
                unserved=len(reply.unserved_stops),
                violations=0,
            )
        return reply

    async def get(self, plan_id: str, vehicle_id: str) -> dispatch_pb2.PlanRoutesResponse:
        """A stored plan (the newest when ``plan_id`` is empty), or one vehicle's part of it."""
        async with self._store.read() as tx:
            row = await plans_repo.get_plan(tx, plan_id)
        if row is None:
            raise NotFound(f"route plan {plan_id!r} not found" if plan_id else "no route plan yet")
        reply = json_format.Parse(row.reply, dispatch_pb2.PlanRoutesResponse())
        if vehicle_id:
            routes = [r for r in reply.routes if r.vehicle_id == vehicle_id]
            if not routes:
                raise NotFound(f"vehicle {vehicle_id} has no route in plan {reply.plan_id}")
            del reply.routes[:]
            reply.routes.extend(routes)
            del reply.sort_plan[:]
        return reply

    async def replan(
        self, plan_id: str, exclude: Iterable[str], reason: str, time_limit_s: float, *, actor: str
    ) -> dispatch_pb2.PlanRoutesResponse:
        """Plan again without ``exclude``: parcels delivered since are left out, the start is
        now if the old plan's start has passed.

        Raises:
            NotFound: no such plan. FailedPrecondition: it was already replaced.
        """
        async with self._store.read() as tx:
            row = await plans_repo.get_plan(tx, plan_id)
        if row is None:
            raise NotFound(f"route plan {plan_id!r} not found")
        if row.replaced_by:
            raise FailedPrecondition(f"plan {plan_id} was replaced by {row.replaced_by}")
        old = json_format.Parse(row.request, dispatch_pb2.PlanRoutesRequest())
        req = PlanRequest(
            hub_site=old.hub_site,
            start_ms=max(old.start_ms, self._clock.now_ms()),
            time_limit_s=time_limit_s,
            parcel_ids=tuple(old.parcel_ids),
            containers={c.site: c.count for c in old.empty_containers},
            exclude=frozenset(old.exclude_vehicle_ids) | frozenset(exclude),
        )
        if req.parcel_ids:
            async with self._store.read() as tx:
                still = await plans_repo.parcels_to_deliver(tx, req.parcel_ids, limit=MAX_PARCELS)
            keep = tuple(p.parcel_id for p in still if p.state in ("sorted", "loaded"))
            req = dataclasses.replace(req, parcel_ids=keep)
        reply = await self.plan(req, actor=actor, replaces=plan_id, reason=reason)
        async with self._store.transaction() as tx:
            await plans_repo.mark_replaced(tx, plan_id, reply.plan_id)
        return reply


def _request_json(req: PlanRequest) -> str:
    msg = dispatch_pb2.PlanRoutesRequest(
        hub_site=req.hub_site,
        parcel_ids=req.parcel_ids,
        time_limit_s=int(req.time_limit_s),
        start_ms=req.start_ms,
        empty_containers=[
            dispatch_pb2.SiteCount(site=s, count=n) for s, n in sorted(req.containers.items())
        ],
        exclude_vehicle_ids=sorted(req.exclude),
    )
    return json_format.MessageToJson(msg, indent=None)


def independent_check(
    inp: DispatchInput, out: DispatchOutput, vehicles: Mapping[str, Vehicle]
) -> list[str]:
    """Every site visit against the vehicle's permits, and its arrival and departure against the
    site's hours and its class's zone window, from the input alone (nothing shared with the
    solver or its windows)."""
    stops = {s.site: s for s in inp.stops}
    problems = []
    for r in out.routes:
        v = vehicles[r.vehicle_id]
        for visit in r.visits:
            if visit.pile_id:
                continue
            s = stops[visit.site]
            lo, hi = s.hours
            if s.zone:
                if s.zone not in v.permit_zones:
                    problems.append(f"{v.vehicle_id} enters zone {s.zone} without a permit")
                default, per_class = inp.zones[s.zone]
                zlo, zhi = per_class.get(str(v.vehicle_class), default)
                lo, hi = max(lo, zlo), min(hi, zhi)
            if visit.arrival_min < lo - 1e-6 or visit.departure_min > hi + 1e-6:
                problems.append(f"{v.vehicle_id} is at {s.site} outside its window")
    return problems


def _ms(midnight_ms: int, minutes: float) -> int:
    return midnight_ms + round(minutes * 60_000)


def _reply(
    inp: DispatchInput, out: DispatchOutput, vehicles: Mapping[str, Vehicle], midnight_ms: int
) -> dispatch_pb2.PlanRoutesResponse:
    stops = {s.site: s for s in inp.stops}
    reply = dispatch_pb2.PlanRoutesResponse()
    for i, r in enumerate(out.routes):
        v = vehicles[r.vehicle_id]
        route = reply.routes.add(
            vehicle_id=r.vehicle_id,
            distance_km=r.distance_km,
            vehicle_class=v.vehicle_class.to_proto(),
            driver_id=v.driver_id,
            energy_kwh=r.energy_kwh,
            start_ms=_ms(midnight_ms, r.start_min),
            end_ms=_ms(midnight_ms, r.end_min),
        )
        chute = f"CH{i + 1:02d}"
        for visit in r.visits:
            stop = route.stops.add(
                arrival_ms=_ms(midnight_ms, visit.arrival_min),
                departure_ms=_ms(midnight_ms, visit.departure_min),
            )
            if visit.pile_id:
                pile = next(p for p in inp.piles if p.pile_id == visit.pile_id)
                stop.site = pile.site
                stop.charging_pile_id = visit.pile_id
                stop.charge_kwh = visit.charge_kwh
                route.charged_kwh += visit.charge_kwh
                continue
            s = stops[visit.site]
            stop.site = s.site
            stop.zone = s.zone
            stop.deliver_parcel_ids.extend(s.deliver)
            stop.collect_parcel_ids.extend(s.collect)
            stop.container_count = s.containers
            stop.pickup_count = len(s.collect) + s.containers
            route.delivered_parcels += len(s.deliver)
            if s.deliver:
                reply.sort_plan.add(destination=s.site, chute_id=chute)
        reply.total_distance_km += r.distance_km
    for site, reason in out.unserved:
        s = stops[site]
        reply.unserved_stops.add(site=site, reason=reason, parcel_ids=[*s.deliver, *s.collect])
        reply.unrouted_parcel_ids.extend(s.deliver)
    return reply
