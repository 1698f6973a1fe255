"""Dispatch under the city's rules: registered vehicles, zone permits and windows, site hours,
charging piles, pickups. Pure and picklable: runs in the planner's worker process.

The routing library gives every stop one window for all vehicles and lets every vehicle visit
every stop, while permits and zone windows depend on the vehicle. So the hub plans one
sub-problem per *profile* (vehicle class and permit set), each with the windows of that class and
only the stops its permits allow; profiles with the fewest possible stops go first, and what one
leaves unserved is offered to the next (docs/dispatch.md, "Planning").
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from routing import RoutePlan, RoutingProblem

_UNLIMITED_L = 1e9
_MIN_SHARE_S = 0.1


@dataclass(frozen=True, slots=True, kw_only=True)
class StopInput:
    """A site to visit: parcels to drop, expired parcels and empty containers to collect."""

    site: str
    lat: float
    lon: float
    zone: str
    hours: tuple[float, float]
    deliver: tuple[str, ...] = ()
    deliver_volume_l: float = 0.0
    collect: tuple[str, ...] = ()
    collect_volume_l: float = 0.0
    containers: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class PileInput:
    """A free, online charging pile; ``ebike_window`` None: e-bikes may not charge there."""

    pile_id: str
    site: str
    lat: float
    lon: float
    power_kw: float
    window: tuple[float, float]
    ebike_window: tuple[float, float] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleInput:
    vehicle_id: str
    vehicle_class: str
    capacity_parcels: int
    capacity_volume_l: float
    battery_kwh: float
    consumption_kwh_per_km: float
    permits: frozenset[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchInput:
    depot: tuple[str, float, float]
    depot_hours: tuple[float, float]
    # Minutes of the day before which no vehicle leaves (the plan's start).
    start_min: float
    stops: tuple[StopInput, ...]
    piles: tuple[PileInput, ...]
    vehicles: tuple[VehicleInput, ...]
    # zone -> (default window, {vehicle class: window})
    zones: Mapping[str, tuple[tuple[float, float], Mapping[str, tuple[float, float]]]]
    time_limit_s: float
    speed_kmh: float = 25.0
    detour: float = 1.3
    container_volume_l: float = 60.0
    service_min: float = 3.0
    service_per_parcel_min: float = 0.25
    seed: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Visit:
    """One stop of a route: a site (``pile_id`` empty) or a charging pile."""

    site: str
    pile_id: str
    arrival_min: float
    departure_min: float
    charge_kwh: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteOutput:
    vehicle_id: str
    visits: tuple[Visit, ...]
    distance_km: float
    energy_kwh: float
    start_min: float
    end_min: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SubProblem:
    """One profile's problem and plan, kept for the library's checker (tests, diagnostics)."""

    profile: str
    problem: RoutingProblem
    plan: RoutePlan
    vehicle_ids: tuple[tuple[str, ...], ...]  # per fleet type, the vehicles in it
    time_limit_s: float  # the search time it was given


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchOutput:
    routes: tuple[RouteOutput, ...]
    unserved: tuple[tuple[str, str], ...]  # (site, reason)
    subproblems: tuple[SubProblem, ...]
    violations: tuple[str, ...]


def _fmt(window: tuple[float, float]) -> str:
    return "-".join(f"{int(m) // 60:02d}:{int(m) % 60:02d}" for m in window)


def service_min(inp: DispatchInput, stop: StopInput) -> float:
    """Minutes spent at ``stop`` (as ``routing.build_problem`` counts them)."""
    return inp.service_min + inp.service_per_parcel_min * (len(stop.deliver) + len(stop.collect))


def stop_window(
    inp: DispatchInput, stop: StopInput, vehicle_class: str
) -> tuple[float, float] | str:
    """When a vehicle of ``vehicle_class`` may *start* serving ``stop`` so that it arrives and
    leaves inside the site's hours and the zone's window for its class, or why it cannot."""
    lo, hi = max(stop.hours[0], inp.start_min), stop.hours[1]
    what = f"site hours {_fmt(stop.hours)}"
    if stop.zone:
        default, per_class = inp.zones[stop.zone]
        zlo, zhi = per_class.get(vehicle_class, default)
        what += f" and zone {stop.zone}'s window {_fmt((zlo, zhi))} for {vehicle_class}"
        lo, hi = max(lo, zlo), min(hi, zhi)
    hi -= service_min(inp, stop)
    if lo > hi:
        return f"{what} leave no time to serve it after the plan's start"
    return lo, hi


def _pile_window(p: PileInput, vclass: str, start: float) -> tuple[float, float] | None:
    """When a vehicle of ``vclass`` may charge at ``p`` (None: not in this plan)."""
    w = p.ebike_window if vclass == "e_bike" else p.window
    if w is None or max(w[0], start) >= w[1]:
        return None
    return max(w[0], start), w[1]


def _profile(v: VehicleInput) -> tuple[str, frozenset[str]]:
    return v.vehicle_class, v.permits


def _why_not(
    inp: DispatchInput, stop: StopInput, profiles: list[tuple[str, frozenset[str]]]
) -> str:
    if not profiles:
        return "no vehicle available"
    reasons = []
    for vclass, permits in profiles:
        if stop.zone and stop.zone not in permits:
            reasons.append(f"no {vclass} holds a permit for zone {stop.zone}")
            continue
        w = stop_window(inp, stop, vclass)
        if isinstance(w, str):
            reasons.append(w)
    return "; ".join(sorted(set(reasons)))


def solve(inp: DispatchInput) -> DispatchOutput:
    """Plan every profile in turn; unserved stops carry their reasons."""
    from routing import (
        ChargingPile,
        Depot,
        Fleet,
        PlanParams,
        StopSite,
        build_problem,
        check_plan,
        plan_routes,
    )

    groups: dict[tuple[str, frozenset[str]], list[VehicleInput]] = {}
    for v in inp.vehicles:
        groups.setdefault(_profile(v), []).append(v)
    profiles = list(groups)
    allowed: dict[tuple[str, frozenset[str]], list[int]] = {}
    for key in profiles:
        vclass, permits = key
        allowed[key] = [
            i
            for i, s in enumerate(inp.stops)
            if (not s.zone or s.zone in permits)
            and not isinstance(stop_window(inp, s, vclass), str)
        ]
    possible = {i for idx in allowed.values() for i in idx}
    unserved: dict[int, str] = {
        i: _why_not(inp, s, profiles) for i, s in enumerate(inp.stops) if i not in possible
    }
    open_stops = set(possible)
    deadline = time.monotonic() + inp.time_limit_s
    tried: dict[int, list[str]] = {}
    routes: list[RouteOutput] = []
    subs: list[SubProblem] = []
    violations: list[str] = []
    for key in sorted(profiles, key=lambda k: (len(allowed[k]), k[0], sorted(k[1]))):
        vclass, permits = key
        chosen = [i for i in allowed[key] if i in open_stops]
        if not chosen:
            continue
        fleet_of: dict[tuple[int, float, float, float], list[str]] = {}
        for v in groups[key]:
            spec = (
                v.capacity_parcels,
                v.capacity_volume_l,
                v.battery_kwh,
                v.consumption_kwh_per_km,
            )
            fleet_of.setdefault(spec, []).append(v.vehicle_id)
        fleet = [
            Fleet(
                name=f"{vclass}-{n}",
                count=len(ids),
                parcels=spec[0],
                volume_l=spec[1] or _UNLIMITED_L,
                battery_kwh=spec[2] or None,
                kwh_per_km=spec[3],
            )
            for n, (spec, ids) in enumerate(fleet_of.items())
        ]
        windows: dict[int, tuple[float, float]] = {}
        for i in chosen:
            w = stop_window(inp, inp.stops[i], vclass)
            assert not isinstance(w, str)  # chosen stops have a window
            windows[i] = w
        sites = [
            StopSite(
                id=inp.stops[i].site,
                lat=inp.stops[i].lat,
                lon=inp.stops[i].lon,
                parcels=len(inp.stops[i].deliver),
                volume_l=inp.stops[i].deliver_volume_l,
                returns=len(inp.stops[i].collect),
                returns_volume_l=inp.stops[i].collect_volume_l,
                containers=inp.stops[i].containers,
                open_min=windows[i][0],
                close_min=windows[i][1],
                service_min=inp.service_min,
            )
            for i in chosen
        ]
        electric = any(v.battery_kwh > 0 for v in groups[key])
        dlo = max(inp.depot_hours[0], inp.start_min)
        piles = [p for p in inp.piles if electric and _pile_window(p, vclass, dlo) is not None]
        depot = Depot(
            id=inp.depot[0],
            lat=inp.depot[1],
            lon=inp.depot[2],
            open_min=dlo,
            close_min=inp.depot_hours[1],
        )
        problem = build_problem(
            depot,
            sites,
            fleet,
            piles=[
                ChargingPile(id=p.pile_id, lat=p.lat, lon=p.lon, power_kw=p.power_kw) for p in piles
            ],
            speed_kmh=inp.speed_kmh,
            detour=inp.detour,
            container_volume_l=inp.container_volume_l,
            service_per_parcel_min=inp.service_per_parcel_min,
        )
        if piles:  # a pile is open when its site is (and, for e-bikes, when the site allows it)
            early, late = problem.early.copy(), problem.late.copy()
            for j, p in enumerate(piles, 1 + len(sites)):
                early[j], late[j] = _pile_window(p, vclass, dlo) or (dlo, dlo)
            problem = dataclasses.replace(problem, early=early, late=late)
        # The budget is shared by the stops still open: a stop one profile could not serve is
        # offered to the next, so shares of the initial total would add up to more than it.
        remaining = max(0.0, deadline - time.monotonic())
        share = max(_MIN_SHARE_S, remaining * len(chosen) / max(1, len(open_stops)))
        plan = plan_routes(problem, params=PlanParams(time_limit=share, seed=inp.seed))
        errors = check_plan(problem, plan, allow_unserved=True)
        violations += [f"{vclass}: {e}" for e in errors]
        pool = {t: list(ids) for t, ids in enumerate(fleet_of.values())}
        for nodes, vtype, buys in zip(plan.routes, plan.vehicle_types, plan.charges, strict=True):
            routes.append(_route(problem, pool[vtype].pop(0), nodes, vtype, buys, len(sites)))
        served = {chosen[n - 1] for r in plan.routes for n in r if 1 <= n <= len(sites)}
        open_stops -= served
        for n in plan.unserved:
            if 1 <= n <= len(sites):
                tried.setdefault(chosen[n - 1], []).append(
                    f"no {vclass} route could take it (capacity, range or windows)"
                )
        subs.append(
            SubProblem(
                profile=f"{vclass}:{','.join(sorted(permits))}",
                problem=problem,
                plan=plan,
                vehicle_ids=tuple(tuple(ids) for ids in fleet_of.values()),
                time_limit_s=share,
            )
        )
    not_served = open_stops | (set(range(len(inp.stops))) - possible)
    left = {
        i: unserved.get(i) or "; ".join(tried.get(i, ["no vehicle could take it"]))
        for i in not_served
    }
    return DispatchOutput(
        routes=tuple(routes),
        unserved=tuple((inp.stops[i].site, left[i]) for i in sorted(left)),
        subproblems=tuple(subs),
        violations=tuple(violations),
    )


def _route(
    pb: RoutingProblem,
    vehicle_id: str,
    nodes: tuple[int, ...],
    vtype: int,
    buys: tuple[float, ...],
    n_sites: int,
) -> RouteOutput:
    """Times as the library's checker computes them: leave at the depot's opening, wait for a
    window to open, charge at the pile's rate, then serve."""
    t = start = float(pb.early[0])
    prev = 0
    visits = []
    km = 0.0
    for node, buy in zip(nodes, buys, strict=True):
        km += float(pb.dist[prev, node])
        t += float(pb.ttime[prev, node])
        # The vehicle waits outside until the window opens: it arrives when service may start.
        t = max(t, float(pb.early[node]))
        arrival = t
        t += float(pb.station_rate[node]) * float(buy)
        t += float(pb.service[node])
        label = str(pb.labels[node])
        pile = node > n_sites
        visits.append(
            Visit(
                site="" if pile else label,
                pile_id=label if pile else "",
                arrival_min=arrival,
                departure_min=t,
                charge_kwh=float(buy) if pile else 0.0,
            )
        )
        prev = node
    km += float(pb.dist[prev, 0])
    t += float(pb.ttime[prev, 0])
    rate = float(pb.veh_consumption[vtype])
    return RouteOutput(
        vehicle_id=vehicle_id,
        visits=tuple(visits),
        distance_km=km,
        energy_kwh=km * rate,
        start_min=start,
        end_min=t,
    )


__all__ = [
    "DispatchInput",
    "DispatchOutput",
    "PileInput",
    "RouteOutput",
    "StopInput",
    "SubProblem",
    "VehicleInput",
    "Visit",
    "solve",
    "stop_window",
]
