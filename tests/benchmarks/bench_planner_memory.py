"""Planner memory and time per iteration at n = 1,000 and 5,000 customers, next to PyVRP.

Run: ``python tests/benchmarks/bench_planner_memory.py`` (generated instances of 1,000 and
5,000 customers, 30 s per solver; ``--sizes 1000 --seconds 10`` for a quick run).  Each solve
runs in its own process so that its peak resident memory (``ru_maxrss``) is its own; the
process's memory after its imports is shown beside it.  Iterations are not the same unit (a
SISR ruin-and-recreate against an HGS crossover plus local search), so time per iteration is
shown as each solver's own figure.  Solutions are checked by ``routing.feasibility``.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def write_instance(path: Path, n: int, seed: int) -> None:
    """A VRPLIB VRPTW instance like Gehring-Homberger's R1 class, scaled to ``n`` customers.

    Uniform customers on a square whose side grows with sqrt(n) (constant density), demand
    1..50 on vehicles of 200, service 10, windows of 10-30 % of a horizon that every customer
    can be reached and left within.
    """
    rng = np.random.default_rng(seed)
    side = 500.0 * math.sqrt(n / 1000)
    xy = np.vstack([[side / 2, side / 2], rng.integers(0, int(side), size=(n, 2))])
    d0 = np.hypot(*(xy[1:] - xy[0]).T)
    horizon = int(4 * d0.max() + 200)
    width = rng.uniform(0.1, 0.3, n) * horizon
    lo = np.ceil(d0)
    hi = horizon - np.ceil(d0) - 10 - width
    early = np.floor(lo + rng.random(n) * np.maximum(hi - lo, 0))
    late = np.floor(early + width)
    lines = [
        f"NAME : gen{n}",
        "TYPE : VRPTW",
        f"DIMENSION : {n + 1}",
        f"VEHICLES : {n // 4}",
        "CAPACITY : 200",
        "SERVICE_TIME : 10",
        "EDGE_WEIGHT_TYPE : EUC_2D",
        "NODE_COORD_SECTION",
        *(f"{i + 1} {int(x)} {int(y)}" for i, (x, y) in enumerate(xy)),
        "DEMAND_SECTION",
        "1 0",
        *(f"{i + 2} {int(q)}" for i, q in enumerate(rng.integers(1, 51, n))),
        "TIME_WINDOW_SECTION",
        f"1 0 {horizon}",
        *(f"{i + 2} {int(e)} {int(la)}" for i, (e, la) in enumerate(zip(early, late, strict=True))),
        "DEPOT_SECTION",
        "1",
        "-1",
        "EOF",
    ]
    path.write_text("\n".join(lines) + "\n")


def child(solver: str, path: Path, seconds: float) -> dict[str, float | str | bool]:
    """Solve in this process; report peak memory, iterations and the checked distance."""
    from routing import PlanParams, check_routes, plan_routes
    from routing.feasibility import route_distance
    from routing.planner import warm_up_planner
    from routing.vrplib import read_vrplib

    if solver == "pyvrp":
        import pyvrp
        from pyvrp.stop import MaxRuntime
    warm_up_planner()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    if solver == "pyvrp":
        data = pyvrp.read(path, round_func="dimacs")
        res = pyvrp.solve(data, stop=MaxRuntime(seconds), seed=1, display=False)
        routes = [[int(a.idx) + 1 for a in r if a.is_client()] for r in res.best.routes()]
        iters, search_s = int(res.num_iterations), float(res.runtime)
    else:
        problem = read_vrplib(path)
        plan = plan_routes(problem, params=PlanParams(time_limit=seconds, seed=1))
        routes = [list(r) for r in plan.routes]
        iters, search_s = plan.iterations, plan.seconds
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    problem = read_vrplib(path)
    errors = check_routes(problem, routes)
    return {
        "solver": solver,
        "peak_mb": peak,
        "base_mb": base,
        "iterations": iters,
        "us_per_iteration": 1e6 * search_s / max(iters, 1),
        "wall_s": wall,
        "distance": route_distance(problem, routes),
        "vehicles": len(routes),
        "feasible": not errors,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="*", type=int, default=[1000, 5000])
    ap.add_argument("--seconds", type=float, default=30.0, help="search budget per solve (30)")
    ap.add_argument("--no-pyvrp", action="store_true")
    ap.add_argument(
        "--child", nargs=3, metavar=("SOLVER", "FILE", "SECONDS"), help=argparse.SUPPRESS
    )
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), float(args.child[2]))))
        return 0
    solvers = ["lockerhub"] + ([] if args.no_pyvrp else ["pyvrp"])
    print(f"# generated R1-like VRPTW, DIMACS costs, {args.seconds:g} s per solve, one core")
    print(
        f"{'n':>5} {'solver':9} {'peak MB':>8} {'after imports':>13} {'iterations':>10} "
        f"{'us/iter':>9} {'wall s':>7} {'distance':>11} {'veh':>4} feasible"
    )
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"gen{n}.vrp"
            write_instance(path, n, seed=n)
            for solver in solvers:
                cmd = [sys.executable, __file__, "--child", solver, str(path), str(args.seconds)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if out.returncode != 0:
                    print(f"{n:5d} {solver:9} failed: {out.stderr.strip()[-300:]}")
                    bad += 1
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                bad += not r["feasible"]
                print(
                    f"{n:5d} {solver:9} {r['peak_mb']:8.0f} {r['base_mb']:13.0f} "
                    f"{r['iterations']:10d} {r['us_per_iteration']:9.0f} {r['wall_s']:7.1f} "
                    f"{r['distance']:11.1f} {r['vehicles']:4d} {'yes' if r['feasible'] else 'NO'}",
                    flush=True,
                )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
