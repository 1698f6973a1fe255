"""Per-carrier quotas: the hub's quota wrapper (``hub.parcels.quotas``) around its allocators,
next to an exact MIP solution (OR-Tools, SCIP) of the same problem with the same quotas.

Run: ``python tests/benchmarks/bench_quotas.py`` (one site of 12 cabinets x 24 compartments, 4
carriers, ~300 parcels: the size of one announce batch at one site, where quotas apply).
``--cabinets/--per-cabinet/--parcels/--carriers`` scale it. Objective (the allocator's, fixed by
routing): the litres of each used compartment beyond its parcel, plus 10000 L per parcel left
unplaced. Quotas: some compartments reserved for one carrier, caps per (carrier, cabinet), some
compartments already held (counted against the caps). The exact baseline is measured in the same
run; figures are printed as ratios to it, never asserted.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hub.parcels.allocation import (  # noqa: E402
    FreeSlot,
    ParcelDemand,
    RoutingAllocator,
    allocate_smallest_fit,
    fits,
)
from hub.parcels.quotas import QuotaRules, allocate_with_quotas  # noqa: E402
from routing.allocation import UNPLACED_PENALTY_L  # noqa: E402

SITE = "S1"
SIZES = ((80, 380, 640), (190, 380, 640), (410, 380, 640))


def vol_l(w: int, h: int, d: int) -> float:
    return w * h * d / 1e6


def instance(
    cabinets: int, per_cabinet: int, parcels: int, carriers: int, seed: int
) -> tuple[list[ParcelDemand], list[str], list[FreeSlot], QuotaRules]:
    rng = random.Random(seed)
    names = [f"CAR{i}" for i in range(carriers)]
    slots = [
        FreeSlot(f"CAB{c:02d}", f"C{j:02d}", SITE, *rng.choices(SIZES, (5, 3, 1))[0], 25_000,
                 "ambient")
        for c in range(cabinets)
        for j in range(per_cabinet)
    ]  # fmt: skip
    reserved = {
        (s.cabinet_id, s.compartment_id): rng.choice(names) for s in slots if rng.random() < 0.15
    }
    caps = {
        (n, f"CAB{c:02d}"): rng.randint(2, per_cabinet // 2)
        for n in names
        for c in range(cabinets)
        if rng.random() < 0.5
    }
    used = {k: rng.randint(0, 2) for k in caps}
    demands, owners = [], []
    for i in range(parcels):
        w, h, d = rng.randint(30, 400), rng.randint(50, 370), rng.randint(80, 600)
        demands.append(ParcelDemand(f"P{i}", SITE, w, h, d, rng.randint(100, 20_000), "ambient"))
        owners.append(rng.choice(["", *names, *names]))  # a few city parcels
    return demands, owners, slots, QuotaRules(caps=caps, reserved=reserved, used=used)


def cost(
    parcels: Sequence[ParcelDemand], slots: Sequence[FreeSlot], a: Sequence[int | None]
) -> float:
    total = 0.0
    for p, s in zip(parcels, a, strict=True):
        if s is None:
            total += UNPLACED_PENALTY_L
        else:
            sl = slots[s]
            total += vol_l(sl.width_mm, sl.height_mm, sl.depth_mm) - vol_l(
                p.width_mm, p.height_mm, p.depth_mm
            )
    return total


def check(
    parcels: Sequence[ParcelDemand],
    owners: Sequence[str],
    slots: Sequence[FreeSlot],
    rules: QuotaRules,
    a: Sequence[int | None],
) -> None:
    placed = [s for s in a if s is not None]
    assert len(placed) == len(set(placed)), "a compartment used twice"
    count: Counter[tuple[str, str]] = Counter()
    for p, o, s in zip(parcels, owners, a, strict=True):
        if s is None:
            continue
        sl = slots[s]
        assert fits(p, sl), "parcel does not fit"
        assert rules.reserved.get((sl.cabinet_id, sl.compartment_id), o) == o, "reserved broken"
        count[(o, sl.cabinet_id)] += 1
    for key, cap in rules.caps.items():
        assert count[key] <= max(0, cap - rules.used.get(key, 0)), f"cap broken {key}"


def exact(
    parcels: Sequence[ParcelDemand],
    owners: Sequence[str],
    slots: Sequence[FreeSlot],
    rules: QuotaRules,
    time_limit_s: float,
) -> tuple[list[int | None], float, str]:
    """A MIP (OR-Tools, SCIP) on x[parcel, slot] with the same objective and the same quotas:
    each parcel at most once, each compartment at most once, reserved compartments only for
    their carrier, at most cap - held compartments per (carrier, cabinet)."""
    from ortools.linear_solver import pywraplp

    t0 = time.perf_counter()
    solver = pywraplp.Solver.CreateSolver("SCIP")
    solver.SetTimeLimit(int(time_limit_s * 1000))
    solver.SetNumThreads(1)  # a shared 2-core machine: one thread, comparable times
    x: dict[tuple[int, int], object] = {}
    for p, (d, o) in enumerate(zip(parcels, owners, strict=True)):
        for s, sl in enumerate(slots):
            if fits(d, sl) and rules.reserved.get((sl.cabinet_id, sl.compartment_id), o) == o:
                x[p, s] = solver.BoolVar(f"x{p}_{s}")
    by_p: dict[int, list[object]] = {}
    by_s: dict[int, list[object]] = {}
    by_cap: dict[tuple[str, str], list[object]] = {}
    for (p, s), v in x.items():
        by_p.setdefault(p, []).append(v)
        by_s.setdefault(s, []).append(v)
        key = (owners[p], slots[s].cabinet_id)
        if key in rules.caps:
            by_cap.setdefault(key, []).append(v)
    for vs in (*by_p.values(), *by_s.values()):
        solver.Add(solver.Sum(vs) <= 1)
    for key, vs in by_cap.items():
        solver.Add(solver.Sum(vs) <= max(0, rules.caps[key] - rules.used.get(key, 0)))
    objective = solver.Objective()
    for (p, s), v in x.items():
        sl, d = slots[s], parcels[p]
        waste = vol_l(sl.width_mm, sl.height_mm, sl.depth_mm) - vol_l(
            d.width_mm, d.height_mm, d.depth_mm
        )
        objective.SetCoefficient(v, waste - UNPLACED_PENALTY_L)  # placing saves the penalty
    objective.SetMinimization()
    status = solver.Solve()
    a: list[int | None] = [None] * len(parcels)
    for (p, s), v in x.items():
        if v.solution_value() > 0.5:  # type: ignore[attr-defined]
            a[p] = s
    names = {pywraplp.Solver.OPTIMAL: "optimal", pywraplp.Solver.FEASIBLE: "feasible"}
    return a, time.perf_counter() - t0, names.get(status, f"status {status}")


def timed(fn: object, *args: object) -> tuple[list[int | None], float]:
    t0 = time.perf_counter()
    out = fn(*args)  # type: ignore[operator]
    return out, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cabinets", type=int, default=12)
    ap.add_argument("--per-cabinet", type=int, default=24)
    ap.add_argument("--parcels", type=int, default=300)
    ap.add_argument("--carriers", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=120.0, help="MIP time limit (s)")
    args = ap.parse_args(argv)
    parcels, owners, slots, rules = instance(
        args.cabinets, args.per_cabinet, args.parcels, args.carriers, args.seed
    )
    routing = RoutingAllocator({SITE: (31.2, 121.4)})
    routing(parcels[:1], slots[:1])  # numba warm-up (compile or cache load), outside the timing
    print(f"# {len(parcels)} parcels, {len(slots)} compartments in {args.cabinets} cabinets, "
          f"{args.carriers} carriers; {len(rules.reserved)} reserved compartments, "
          f"{len(rules.caps)} caps; seed {args.seed}; "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")  # fmt: skip
    ex, ex_s, status = exact(parcels, owners, slots, rules, args.time_limit)
    check(parcels, owners, slots, rules, ex)
    rows = [(f"exact MIP SCIP ({status})", ex, ex_s)]
    for name, inner in (("quotas + smallest fit", allocate_smallest_fit),
                        ("quotas + numba SSP", routing)):  # fmt: skip
        best: tuple[list[int | None], float] | None = None
        for _ in range(3):
            a, secs = timed(allocate_with_quotas, inner, parcels, owners, slots, rules)
            best = (a, secs) if best is None or secs < best[1] else best
        assert best is not None
        check(parcels, owners, slots, rules, best[0])
        rows.append((name, best[0], best[1]))
    free_runs = [timed(allocate_smallest_fit, parcels, slots) for _ in range(3)]
    free, free_s = min(free_runs, key=lambda r: r[1])
    rows.append(("no quotas, smallest fit", free, free_s))
    ex_cost = cost(parcels, slots, ex)
    print(f"\n{'engine':28} {'seconds':>9} {'cost (L)':>12} {'vs exact':>9} {'placed':>7} "
          f"{'waste (L)':>10}")  # fmt: skip
    for name, a, secs in rows:
        c = cost(parcels, slots, a)
        placed = sum(s is not None for s in a)
        waste = c - (len(parcels) - placed) * UNPLACED_PENALTY_L
        print(f"{name:28} {secs:9.4f} {c:12.1f} {c / ex_cost:9.4f} {placed:7d} {waste:10.1f}")
    print("\nratios (same run):")
    for name, a, secs in rows[1:3]:
        print(f"  {name:24} cost / exact = {cost(parcels, slots, a) / ex_cost:.4f}   "
              f"speed exact / it = {ex_s / secs:8.1f}x")  # fmt: skip
    print("  (the 'no quotas' row ignores the quotas: what they cost in placement and litres)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
