"""Route planner on the Solomon VRPTW instances, side by side with PyVRP at the same time budget.

Run: ``python tests/benchmarks/bench_planner.py --seconds 10`` (all 56 instances; add
``--instances C101 R101`` for a subset, ``--ortools`` to add OR-Tools as a third engine).
Objective: total distance with float Euclidean distances, hard time windows.  Every solution of
every engine is checked by ``routing.feasibility`` (independent of the solvers).  Gaps are
against the ``*_distance`` best-known values of BKS.json.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

# Run as a script from anywhere: make the repository root importable first.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from routing import (  # noqa: E402
    PlanParams,
    RoutingProblem,
    check_routes,
    plan_routes,
    read_solomon,
)
from routing.feasibility import route_distance  # noqa: E402
from routing.planner import warm_up_planner  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "solomon"
SCALE = 1000  # PyVRP works in integers: distances rounded, durations rounded up


def solve_pyvrp(problem: RoutingProblem, seconds: float, seed: int) -> list[list[int]]:
    """PyVRP's HGS on the same instance (integer data scaled so its plans stay float-feasible)."""
    from pyvrp import Model
    from pyvrp.stop import MaxRuntime

    m = Model()
    locs = [m.add_location(float(x), float(y)) for x, y in problem.coords]  # type: ignore[union-attr]
    depot = m.add_depot(
        locs[0],
        tw_early=math.ceil(problem.early[0] * SCALE),
        tw_late=math.floor(problem.late[0] * SCALE),
    )
    m.add_vehicle_type(
        num_available=int(problem.veh_count[0]),
        capacity=int(problem.veh_capacity[0, 0]),
        start_depot=depot,
        end_depot=depot,
        tw_early=math.ceil(problem.early[0] * SCALE),
        tw_late=math.floor(problem.late[0] * SCALE),
    )
    for i in range(1, problem.n_nodes):
        m.add_client(
            locs[i],
            delivery=int(problem.delivery[i, 0]),
            service_duration=math.ceil(problem.service[i] * SCALE),
            tw_early=math.ceil(problem.early[i] * SCALE),
            tw_late=math.floor(problem.late[i] * SCALE),
        )
    for i, a in enumerate(locs):
        for j, b in enumerate(locs):
            d = float(problem.dist[i, j]) * SCALE
            m.add_edge(a, b, distance=round(d), duration=math.ceil(d - 1e-9))
    res = m.solve(stop=MaxRuntime(seconds), seed=seed, display=False)
    # Activity indices count clients from 0; the problem numbers them after the depot.
    return [[int(a.idx) + 1 for a in route if a.is_client()] for route in res.best.routes()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="time budget per instance")
    ap.add_argument("--instances", nargs="*", help="subset, e.g. C101 R205 (default: all 56)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ortools", action="store_true", help="also run the OR-Tools engine")
    ap.add_argument("--no-pyvrp", action="store_true", help="skip PyVRP")
    args = ap.parse_args(argv)
    bks = json.loads((DATA / "BKS.json").read_text())
    names = args.instances or sorted(p.stem for p in DATA.glob("*.txt"))
    compile_s = warm_up_planner()
    engines = (
        ["lockerhub"] + ([] if args.no_pyvrp else ["pyvrp"]) + (["ortools"] if args.ortools else [])
    )
    print(
        f"# Solomon VRPTW, distance objective, {args.seconds:g} s per instance per engine, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; planner JIT warm-up {compile_s:.1f} s (excluded)"
    )
    print(
        f"{'instance':9} {'BKS':>9} "
        + " ".join(f"{e + ' dist':>14} {'gap%':>6} {'veh':>3}" for e in engines)
        + "  feasible"
    )
    gaps: dict[str, list[float]] = {e: [] for e in engines}
    infeasible = 0
    for name in names:
        problem = read_solomon(DATA / f"{name}.txt")
        best = bks[f"{name}_distance"]["best_known_cost"]
        row = f"{name:9} {best:9.2f} "
        ok_all = True
        for e in engines:
            t0 = time.perf_counter()
            if e == "lockerhub":
                plan = plan_routes(
                    problem, params=PlanParams(time_limit=args.seconds, seed=args.seed)
                )
                routes = [list(r) for r in plan.routes]
            elif e == "pyvrp":
                routes = solve_pyvrp(problem, args.seconds, args.seed)
            else:
                plan = plan_routes(
                    problem, params=PlanParams(time_limit=args.seconds, engine="ortools")
                )
                routes = [list(r) for r in plan.routes]
            _ = time.perf_counter() - t0
            errors = check_routes(problem, routes)
            ok_all &= not errors
            infeasible += bool(errors)
            dist = route_distance(problem, routes)
            gap = 100.0 * (dist / best - 1.0)
            gaps[e].append(gap if not errors else math.nan)
            row += f"{dist:14.2f} {gap:6.2f} {len(routes):3d} "
        print(row + (" yes" if ok_all else " NO"), flush=True)
    print()
    means = {
        e: statistics.fmean([g for g in gaps[e] if not math.isnan(g)] or [math.nan])
        for e in engines
    }
    for e in engines:
        print(f"mean gap {e:9}: {means[e]:6.3f} %  over {len(gaps[e])} instances")
    if "pyvrp" in means:
        print(
            f"lockerhub - pyvrp mean gap: {means['lockerhub'] - means['pyvrp']:+.3f} pp "
            f"(goal <= +1.0 pp)"
        )
    if "ortools" in means:
        print(f"lockerhub - ortools mean gap: {means['lockerhub'] - means['ortools']:+.3f} pp")
    print(f"infeasible solutions: {infeasible}")
    return 1 if infeasible else 0


if __name__ == "__main__":
    sys.exit(main())
