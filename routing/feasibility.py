"""Independent feasibility check of a route plan (shares no code with the solvers)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from routing.problem import RoutePlan, RoutingProblem

__all__ = ["check_plan", "check_routes"]

TOL = 1e-6


def check_plan(
    problem: RoutingProblem, plan: RoutePlan, *, allow_unserved: bool = False
) -> list[str]:
    """Violations of ``plan`` (empty when feasible); see ``check_routes``."""
    errors = check_routes(
        problem,
        [list(r) for r in plan.routes],
        vehicle_types=list(plan.vehicle_types),
        charges=[list(c) for c in plan.charges],
        allow_unserved=allow_unserved,
    )
    total = route_distance(problem, [list(r) for r in plan.routes])
    if not math.isclose(total, plan.distance, rel_tol=1e-9, abs_tol=1e-6):
        errors.append(f"reported distance {plan.distance} but the routes measure {total}")
    return errors


def route_distance(problem: RoutingProblem, routes: Sequence[Sequence[int]]) -> float:
    """Total distance of ``routes`` (node indices, the depot implied at both ends)."""
    total = 0.0
    for r in routes:
        prev = 0
        for node in r:
            total += float(problem.dist[prev][node])
            prev = node
        total += float(problem.dist[prev][0])
    return total


def check_routes(
    problem: RoutingProblem,
    routes: Sequence[Sequence[int]],
    *,
    vehicle_types: Sequence[int] | None = None,
    charges: Sequence[Sequence[float]] | None = None,
    allow_unserved: bool = False,
) -> list[str]:
    """Check capacity, time windows, fleet size, battery and coverage.

    Charging: energy bought at a station stop is ``charges[r][i]``; it takes
    ``station_rate * energy`` time, and the battery may neither exceed its capacity after
    charging nor drop below zero on any arc.  Without ``charges``, each station stop buys just
    enough to reach the next station or the depot (the planner's policy, re-derived here).
    """
    pb = problem
    errors: list[str] = []
    n = pb.n_nodes
    types = list(vehicle_types) if vehicle_types is not None else [0] * len(routes)
    if len(types) != len(routes):
        return ["one vehicle type per route expected"]
    for vt0, k in Counter(types).items():
        if not 0 <= vt0 < len(pb.veh_count):
            errors.append(f"unknown vehicle type {vt0}")
        elif k > int(pb.veh_count[vt0]):
            errors.append(f"{k} routes of type {vt0}, only {int(pb.veh_count[vt0])} vehicles")
    seen: Counter[int] = Counter()
    for ri, route in enumerate(routes):
        vt = types[ri]
        if not 0 <= vt < len(pb.veh_count):
            continue
        for node in route:
            if not 0 < node < n:
                errors.append(f"route {ri}: node {node} out of range")
                return errors
            if not pb.is_station[node]:
                seen[node] += 1
        dims = pb.delivery.shape[1]
        for k in range(dims):
            load = float(sum(float(pb.delivery[x][k]) for x in route))
            cap = float(pb.veh_capacity[vt][k])
            if load > cap + TOL:
                errors.append(f"route {ri}: leaves with load {load} > capacity {cap} (dim {k})")
            for x in route:
                load += float(pb.pickup[x][k]) - float(pb.delivery[x][k])
                if load > cap + TOL:
                    errors.append(f"route {ri}: load {load} > capacity {cap} after {x}")
        q = float(pb.veh_battery[vt])
        r = float(pb.veh_consumption[vt])
        ev = math.isfinite(q)
        buys = list(charges[ri]) if charges is not None else _just_enough(pb, route, q, r)
        if len(buys) != len(route):
            errors.append(f"route {ri}: {len(buys)} charge entries for {len(route)} stops")
            continue
        t = float(pb.early[0])
        level = q
        prev = 0
        for i, node in enumerate([*route, 0]):
            t += float(pb.ttime[prev][node])
            if t > float(pb.late[node]) + TOL:
                errors.append(
                    f"route {ri}: arrives at {node} at {t:.6f} after {float(pb.late[node])}"
                )
            t = max(t, float(pb.early[node]))
            if ev:
                level -= r * float(pb.dist[prev][node])
                if level < -TOL:
                    errors.append(f"route {ri}: battery at {level:.6f} < 0 on arriving at {node}")
            if i < len(route):
                buy = float(buys[i])
                if buy < -TOL or (buy > TOL and (not pb.is_station[node] or not ev)):
                    errors.append(f"route {ri}: charges {buy} at {node}, not a station")
                if buy > 0:
                    level += buy
                    t += float(pb.station_rate[node]) * buy
                    if level > q + TOL:
                        errors.append(f"route {ri}: battery {level} > capacity {q} at {node}")
                t += float(pb.service[node])
            prev = node
    for c in pb.customers.tolist():
        if seen[c] > 1:
            errors.append(f"stop {c} served {seen[c]} times")
        elif seen[c] == 0 and not allow_unserved:
            errors.append(f"stop {c} not served")
    return errors


def _just_enough(pb: RoutingProblem, route: Sequence[int], q: float, r: float) -> list[float]:
    if not math.isfinite(q):
        return [0.0] * len(route)
    level = q
    out: list[float] = []
    full = [0, *route, 0]
    for i in range(1, len(full) - 1):
        level -= r * float(pb.dist[full[i - 1]][full[i]])
        if not pb.is_station[full[i]]:
            out.append(0.0)
            continue
        need = 0.0
        for j in range(i, len(full) - 1):
            need += r * float(pb.dist[full[j]][full[j + 1]])
            if pb.is_station[full[j + 1]] or full[j + 1] == 0:
                break
        buy = max(0.0, min(q, need) - level)
        out.append(buy)
        level += buy
    return out
