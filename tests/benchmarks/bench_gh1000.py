"""Route planner on the Gehring-Homberger 1000-customer VRPTW instances, side by side with PyVRP.

Default (what ``make bench`` runs, about 1.5 hours): the 30 instances of tests/data/gh1000 at
60 s each for both solvers, one core each, then quality growth at 10 s and 300 s on six of
them (one per class).  Quick run: ``--seconds 20 --instances C1_10_1 R2_10_1 --growth``
(``--growth`` alone skips the growth runs).  ``--workers N`` adds a lockerhub column with N
processes (independent seeds, best kept), reported separately from the one-core figures.

Costs follow the DIMACS convention (distances truncated to one decimal, total distance).  Both
solvers' routes are checked by ``routing.feasibility`` (shares no code with the planner) and
measured with the same distance matrix; gaps are to the ``.sol`` best-known costs.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from routing import PlanParams, check_routes, plan_routes  # noqa: E402
from routing.feasibility import route_distance  # noqa: E402
from routing.planner import warm_up_planner  # noqa: E402
from routing.vrplib import read_vrplib, read_vrplib_solution  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "gh1000"
GROWTH = ["C1_10_1", "C2_10_1", "R1_10_1", "R2_10_1", "RC1_10_1", "RC2_10_1"]


def solve_pyvrp(path: Path, seconds: float, seed: int) -> tuple[list[list[int]], int]:
    """PyVRP's HGS with its default parameters, reading the file as its docs say (DIMACS)."""
    import pyvrp
    from pyvrp.stop import MaxRuntime

    data = pyvrp.read(path, round_func="dimacs")
    res = pyvrp.solve(data, stop=MaxRuntime(seconds), seed=seed, display=False)
    # Activity indices count clients from 0 in file order; the .sol files from 1.
    routes = [[int(a.idx) + 1 for a in r if a.is_client()] for r in res.best.routes()]
    return routes, int(res.num_iterations)


def run(names: list[str], seconds: float, engines: list[str], seed: int) -> dict[str, list[float]]:
    print(
        f"\n# {seconds:g} s per instance per engine (one core each unless marked), "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    head = " ".join(f"{e + ' dist':>16} {'gap%':>6} {'veh':>3} {'it/s':>6}" for e in engines)
    print(f"{'instance':9} {'BKS':>9} {head}  feasible")
    gaps: dict[str, list[float]] = {e: [] for e in engines}
    for name in names:
        problem = read_vrplib(DATA / f"{name}.vrp")
        _bks_routes, bks = read_vrplib_solution(DATA / f"{name}.sol")
        assert bks is not None
        row = f"{name:9} {bks:9.1f} "
        ok_all = True
        for e in engines:
            t0 = time.perf_counter()
            if e == "pyvrp":
                routes, iters = solve_pyvrp(DATA / f"{name}.vrp", seconds, seed)
            else:
                workers = int(e.split("x")[1]) if "x" in e else 1
                params = PlanParams(time_limit=seconds, seed=seed, workers=workers)
                plan = plan_routes(problem, params=params)
                routes, iters = [list(r) for r in plan.routes], plan.iterations
            wall = time.perf_counter() - t0
            errors = check_routes(problem, routes)
            ok_all &= not errors
            dist = route_distance(problem, routes)
            gap = 100.0 * (dist / bks - 1.0)
            gaps[e].append(gap if not errors else math.inf)
            row += f"{dist:16.1f} {gap:6.2f} {len(routes):3d} {iters / wall:6.0f} "
        print(row + (" yes" if ok_all else " NO"), flush=True)
    for e in engines:
        g = gaps[e]
        print(
            f"{e:12}: mean gap {statistics.fmean(g):6.2f} %, worst {max(g):6.2f} % "
            f"over {len(g)} instances, infeasible {sum(math.isinf(x) for x in g)}"
        )
    return gaps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="budget per instance (60)")
    ap.add_argument("--instances", nargs="*", help="subset, e.g. C1_10_1 R2_10_3 (default: all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-pyvrp", action="store_true", help="skip PyVRP")
    ap.add_argument("--no-lockerhub", action="store_true", help="skip lockerhub's one-core run")
    ap.add_argument("--workers", type=int, default=1, help="also run lockerhub on N processes")
    ap.add_argument(
        "--growth",
        nargs="*",
        type=float,
        default=[10.0, 300.0],
        help="budgets of the growth runs on six instances (default 10 300; none: skip)",
    )
    ap.add_argument("--growth-instances", nargs="*", default=GROWTH, help="their instances")
    args = ap.parse_args(argv)
    names = args.instances or sorted(p.stem for p in DATA.glob("*.vrp"))
    compile_s = warm_up_planner()
    print(
        f"# Gehring-Homberger 1000, DIMACS costs; planner JIT warm-up {compile_s:.1f} s "
        "(excluded); it/s = iterations per wall second of the call"
    )
    engines = ([] if args.no_lockerhub else ["lockerhub"]) + (
        [f"lockerhub x{args.workers}"] if args.workers > 1 else []
    )
    engines += [] if args.no_pyvrp else ["pyvrp"]
    results = {args.seconds: run(names, args.seconds, engines, args.seed)}
    for sec in args.growth:
        if sec != args.seconds:
            results[sec] = run(args.growth_instances, sec, engines, args.seed)
    infeasible = sum(math.isinf(g) for r in results.values() for v in r.values() for g in v)
    print(f"\ninfeasible solutions: {infeasible}")
    return 1 if infeasible else 0


if __name__ == "__main__":
    sys.exit(main())
