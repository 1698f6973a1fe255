"""``lockerhub allocate`` and ``lockerhub plan-routes``: the routing subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from routing.allocation import AllocationParams, AllocationProblem
from routing.errors import ProblemError, RoutingError
from routing.problem import PlanParams, RoutingProblem

__all__ = ["register"]

EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``allocate`` and ``plan-routes`` subcommands to the root CLI's subparsers."""
    p = subparsers.add_parser(
        "allocate",
        help="allocate parcels to locker compartments",
        description="Allocate a batch of parcels to free compartments (PROBLEM.json).",
    )
    p.add_argument("problem", metavar="PROBLEM.json", help="allocation problem (JSON)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--engine", choices=("numba", "python", "exact"), default="numba", help=argparse.SUPPRESS
    )
    p.set_defaults(func=_allocate)

    q = subparsers.add_parser(
        "plan-routes",
        help="plan vehicle routes",
        description=(
            "Plan routes for a Solomon VRPTW, an E-VRPTW (Schneider et al.) or a VRPLIB VRPTW "
            "instance (DIMACS costs: distances truncated to one decimal)."
        ),
    )
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--solomon", metavar="FILE", help="Solomon VRPTW instance")
    src.add_argument("--evrptw", metavar="FILE", help="E-VRPTW instance (Schneider et al. 2014)")
    src.add_argument(
        "--vrplib", metavar="FILE", help="VRPLIB VRPTW instance (customers numbered 1..n)"
    )
    q.add_argument("--seconds", type=float, default=10.0, help="search time limit (default 10)")
    q.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    q.add_argument("--engine", choices=("sisr", "ortools"), default="sisr", help="search engine")
    q.add_argument(
        "--workers",
        type=int,
        default=1,
        help="independent searches in parallel processes, best kept (default 1: one core)",
    )
    q.add_argument("--json", action="store_true", help="print the plan as JSON")
    q.set_defaults(func=_plan_routes)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _allocate(args: argparse.Namespace) -> int:
    from routing.allocator import allocate

    try:
        data = _read_json(args.problem)
        problem = AllocationProblem.from_json(data)
        result = allocate(problem, params=AllocationParams(engine=args.engine))
    except RoutingError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(result.to_json(problem)))
    else:
        print(
            f"placed {result.placed}/{problem.n_parcels} parcels, cost {result.cost:.3f}, "
            f"{result.seconds:.3f} s (+{result.compile_seconds:.3f} s compile)"
        )
        for item in result.to_json(problem)["assignments"]:
            print(f"{item['parcel']} -> {item['compartment']}")
        unplaced = result.to_json(problem)["unplaced"]
        if unplaced:
            print("unplaced: " + ", ".join(unplaced))
    return 0


def _plan_routes(args: argparse.Namespace) -> int:
    from routing.io import read_evrptw, read_solomon
    from routing.planner import plan_routes
    from routing.vrplib import read_vrplib

    try:
        params = PlanParams(
            time_limit=args.seconds, seed=args.seed, engine=args.engine, workers=args.workers
        )
        problem: RoutingProblem
        if args.solomon:
            problem = read_solomon(args.solomon)
        elif args.evrptw:
            problem = read_evrptw(args.evrptw)
        else:
            problem = read_vrplib(args.vrplib)
        plan = plan_routes(problem, params=params)
    except RoutingError as exc:
        return _fail(str(exc))
    out = plan.to_json(problem)
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"{problem.name}: distance {plan.distance:.2f}, {plan.vehicles} vehicles, "
            f"{plan.iterations} iterations in {plan.seconds:.1f} s"
        )
        for i, route in enumerate(out["routes"], 1):
            print(f"  route {i}: " + " ".join(str(x) for x in route))
    return 1 if plan.unserved else 0


def _read_json(path: str) -> Any:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ProblemError(path, f"cannot read: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProblemError(path, f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc
