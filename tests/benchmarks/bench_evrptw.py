"""Electric planner on the 56 E-VRPTW instances of Schneider et al. (partial recharging).

Run: ``python tests/benchmarks/bench_evrptw.py --seconds 30`` (``--instances c101 r201`` for a
subset).  Every plan is checked by ``routing.feasibility`` (battery never below zero, recharge time
``g`` per energy unit, time windows, capacity); distance and vehicles are compared with the
partial-recharge best-known solutions (EVRPTW-PR, hierarchical: fewest vehicles, then distance).
The BKS routes themselves are also re-checked by the same checker, as a test of the checker.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from routing import PlanParams, check_plan, check_routes, plan_routes, read_evrptw  # noqa: E402
from routing.planner import warm_up_planner  # noqa: E402

DATA = ROOT / "tests" / "data" / "evrptw"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="time budget per instance")
    ap.add_argument("--instances", nargs="*", help="subset, e.g. c101 r201 (default: all 56)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--vehicle-cost",
        type=float,
        default=0.0,
        help="fixed cost per vehicle (e.g. 1000 to approach the BKS' fewest-vehicles-first rule)",
    )
    args = ap.parse_args(argv)
    with (DATA / "bks-evrptwpr.tsv").open() as fh:
        bks = {r["INSTANCE"].lower(): r for r in csv.DictReader(fh, delimiter="\t")}
    files = DATA.glob("*_21.txt")
    names = args.instances or sorted(p.name.removesuffix("_21.txt") for p in files)
    compile_s = warm_up_planner()
    now = datetime.now(UTC)
    print(f"# E-VRPTW (partial recharge), {args.seconds:g} s per instance, "
          f"vehicle fixed cost {args.vehicle_cost:g}, "
          f"{now:%Y-%m-%d %H:%M} UTC; JIT warm-up {compile_s:.1f} s (excluded)")  # fmt: skip
    print(f"{'instance':9} {'BKS dist':>9} {'veh':>3} {'ours dist':>10} {'veh':>3} {'gap%':>7} "
          f"{'stations':>8} {'feasible':>8} {'BKS ok':>6}")  # fmt: skip
    gaps: list[float] = []
    feasible = 0
    more_vehicles = 0
    vehicles = 0
    ref_vehicles = 0
    for name in names:
        problem = read_evrptw(DATA / f"{name}_21.txt")
        if args.vehicle_cost:
            problem = dataclasses.replace(problem, veh_fixed_cost=np.array([args.vehicle_cost]))
        ref = bks[name]
        index = {lab: i for i, lab in enumerate(problem.labels)}
        ref_routes = []
        for part in ref["CONFIGURATION"].split("D0;D0"):
            seq = [index[x] for x in part.strip(";").split(";") if x and x != "D0"]
            if seq:
                ref_routes.append(seq)
        ref_ok = not check_routes(problem, ref_routes)
        plan = plan_routes(problem, params=PlanParams(time_limit=args.seconds, seed=args.seed))
        errors = check_plan(problem, plan)
        ok = not errors and not plan.unserved
        feasible += ok
        best = float(ref["TOTAL_DISTANCE"])
        gap = 100.0 * (plan.distance / best - 1.0)
        if ok:
            gaps.append(gap)
        more_vehicles += plan.vehicles > int(ref["NUM_VEHICLES"])
        vehicles += plan.vehicles
        ref_vehicles += int(ref["NUM_VEHICLES"])
        n_st = sum(1 for r in plan.routes for n in r if problem.is_station[n])
        print(f"{name:9} {best:9.2f} {int(ref['NUM_VEHICLES']):3d} {plan.distance:10.2f} "
              f"{plan.vehicles:3d} {gap:7.2f} {n_st:8d} {'yes' if ok else 'NO':>8} "
              f"{'yes' if ref_ok else 'no':>6}", flush=True)  # fmt: skip
        if errors:
            print("   " + "; ".join(errors[:3]))
    print()
    print(f"feasible: {feasible}/{len(names)}   (goal: all)")
    if gaps:
        print(f"mean distance gap to BKS: {statistics.fmean(gaps):.3f} %   (goal < 5 %)")
        print(f"median gap {statistics.median(gaps):.3f} %, min {min(gaps):.3f} %, "
              f"max {max(gaps):.3f} %")  # fmt: skip
    print("BKS ok: the published routes pass the checker when charging just enough at each")
    print("  station (the files list no charge amounts; 'no' = they need earlier, longer charges)")
    print(f"vehicles in all: {vehicles} (BKS {ref_vehicles}, ratio {vehicles / ref_vehicles:.3f})")
    print(f"instances using more vehicles than the BKS: {more_vehicles} "
          f"(BKS: fewest vehicles first, then distance)")  # fmt: skip
    return 0 if feasible == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
