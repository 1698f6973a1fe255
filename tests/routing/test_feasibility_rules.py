"""Every rule of the independent plan checker (routing.feasibility), on a hand-checkable line.

The depot is at x=0, stops 1 and 2 at x=10 and x=20, a charging station (node 3) at x=15; distance
and travel time are |x_i - x_j|. Each infeasible case breaks one rule and expects exactly the
violations listed; the feasible cases sit on the limits (a full vehicle, an empty battery at the
depot, an arrival at the closing minute).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from routing import RoutePlan, RoutingProblem, check_plan, check_routes
from routing.feasibility import _just_enough, route_distance

X = np.array([0.0, 10.0, 20.0, 15.0])
INF = float("inf")
EV, TRUCK = 0, 1  # vehicle types: an electric van (battery 50) and a diesel truck (two of them)


def line(**changes: Any) -> RoutingProblem:
    """The line problem, with per-node/per-type arrays replaced by ``changes``."""
    dist = np.abs(X[:, None] - X[None, :])
    fields: dict[str, Any] = {
        "labels": ("D", "C1", "C2", "S"),
        "dist": dist,
        "ttime": dist,
        "early": [0.0, 0.0, 0.0, 0.0],
        "late": [100.0, 100.0, 100.0, 100.0],
        "service": [0.0, 1.0, 1.0, 0.0],
        "delivery": [[0.0, 0.0], [2.0, 1.0], [3.0, 1.0], [0.0, 0.0]],
        "pickup": [[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]],
        "is_station": [False, False, False, True],
        "station_rate": [0.0, 0.0, 0.0, 0.5],
        "veh_capacity": [[5.0, 2.0], [4.0, 2.0]],
        "veh_battery": [50.0, INF],
        "veh_consumption": [1.0, 0.0],
        "veh_count": [1, 2],
        "veh_fixed_cost": [0.0, 0.0],
    }
    fields.update(changes)
    return RoutingProblem(**fields)


def check(
    pb: RoutingProblem,
    routes: list[list[int]],
    types: list[int] | None = None,
    charges: list[list[float]] | None = None,
    **kw: Any,
) -> list[str]:
    return check_routes(pb, routes, vehicle_types=types, charges=charges, **kw)


FEASIBLE = [
    # A full van (load 5 and 2 = capacity) with exactly the energy for 40 distance units.
    ("full-van-empty-battery-at-depot", line(veh_battery=[40.0, INF]), [[1, 2]], [EV], None),
    ("trucks-at-fleet-size", line(), [[1], [2]], [TRUCK, TRUCK], None),
    ("default-type-is-0", line(), [[1, 2]], None, None),
    ("arrive-at-closing-time", line(late=[42.0, 10.0, 21.0, 100.0]), [[1, 2]], [EV], None),
    (
        "wait-for-opening",
        line(early=[0.0, 0.0, 25.0, 0.0], late=[46, 100, 100, 100]),
        [[1, 2]],
        [EV],
        None,
    ),
    # Recharging at the station: 10 bought (energy to reach the depot) in 7.5 time units.
    ("recharge-on-the-way", line(veh_battery=[25.0, INF]), [[1, 3, 2]], [EV], None),
    (
        "explicit-charge-to-full",
        line(veh_battery=[25.0, INF]),
        [[1, 3, 2]],
        [EV],
        [[0.0, 15.0, 0.0]],
    ),
    ("station-visit-without-charge", line(), [[3, 1, 2]], [EV], [[0.0, 0.0, 0.0]]),
    (
        "tolerance",
        line(veh_capacity=[[5.0000001, 2.0], [4.0, 2.0]]),
        [[1, 2]],
        [EV],
        [[-1e-7, 0.0]],
    ),
]


@pytest.mark.parametrize(("name", "pb", "routes", "types", "charges"), FEASIBLE)
def test_feasible_plans_on_the_limits(
    name: str,
    pb: RoutingProblem,
    routes: list[list[int]],
    types: list[int] | None,
    charges: list[list[float]] | None,
) -> None:
    assert check(pb, routes, types, charges) == []


INFEASIBLE = [
    (
        "type-count-mismatch",
        line(),
        [[1, 2]],
        [EV, TRUCK],
        None,
        ["one vehicle type per route expected"],
    ),
    (
        "unknown-type-above",
        line(),
        [[1, 2]],
        [2],
        None,
        ["unknown vehicle type 2", "stop 1 not served", "stop 2 not served"],
    ),
    (
        "unknown-type-negative",
        line(),
        [[1], [2]],
        [-1, TRUCK],
        None,
        ["unknown vehicle type -1", "stop 1 not served"],
    ),
    ("too-many-vans", line(), [[1], [2]], [EV, EV], None, ["2 routes of type 0, only 1 vehicles"]),
    ("depot-as-stop", line(), [[0, 1, 2]], [EV], None, ["route 0: node 0 out of range"]),
    (
        "node-past-the-end",
        line(),
        [[1], [2, 4]],
        [TRUCK, TRUCK],
        None,
        ["route 1: node 4 out of range"],
    ),
    (
        "leaves-overloaded",
        line(),
        [[1, 2]],
        [TRUCK],
        None,
        ["route 0: leaves with load 5.0 > capacity 4.0 (dim 0)"],
    ),
    (
        "leaves-overloaded-second-dimension",
        line(veh_capacity=[[5.0, 1.5], [4.0, 2.0]]),
        [[1, 2]],
        [EV],
        None,
        ["route 0: leaves with load 2.0 > capacity 1.5 (dim 1)"],
    ),
    (
        "leaves-just-overloaded",
        line(veh_capacity=[[4.999, 2.0], [4.0, 2.0]]),
        [[2, 1]],
        [EV],
        None,
        ["route 0: leaves with load 5.0 > capacity 4.999 (dim 0)"],
    ),
    (
        "pickup-overloads",
        line(pickup=[[0.0, 0.0], [3.0, 0.0], [0.0, 0.0], [0.0, 0.0]]),
        [[1, 2]],
        [EV],
        None,
        ["route 0: load 6.0 > capacity 5.0 after 1"],
    ),
    (
        "late-at-a-stop",
        line(late=[100.0, 9.999, 100.0, 100.0]),
        [[1, 2]],
        [EV],
        None,
        ["route 0: arrives at 1 at 10.000000 after 9.999"],
    ),
    (
        "service-time-counts",
        line(late=[100.0, 100.0, 20.5, 100.0]),
        [[1, 2]],
        [EV],
        None,
        ["route 0: arrives at 2 at 21.000000 after 20.5"],
    ),
    (
        "waiting-counts",
        line(early=[0.0, 0.0, 25.0, 0.0], late=[45.0, 100.0, 100.0, 100.0]),
        [[1, 2]],
        [EV],
        None,
        ["route 0: arrives at 0 at 46.000000 after 45.0"],
    ),
    (
        "depot-opens-late",
        line(early=[5.0, 0.0, 0.0, 0.0], late=[100.0, 14.0, 100.0, 100.0]),
        [[1, 2]],
        [EV],
        None,
        ["route 0: arrives at 1 at 15.000000 after 14.0"],
    ),
    (
        "battery-runs-out",
        line(veh_battery=[39.999, INF]),
        [[1, 2]],
        [EV],
        None,
        ["route 0: battery at -0.001000 < 0 on arriving at 0"],
    ),
    (
        "charging-takes-time",
        line(veh_battery=[25.0, INF], late=[100.0, 100.0, 28.0, 100.0]),
        [[1, 3, 2]],
        [EV],
        None,
        ["route 0: arrives at 2 at 28.500000 after 28.0"],
    ),
    (
        "charged-too-little",
        line(veh_battery=[25.0, INF]),
        [[1, 3, 2]],
        [EV],
        [[0.0, 14.0, 0.0]],
        ["route 0: battery at -1.000000 < 0 on arriving at 0"],
    ),
    (
        "over-charged",
        line(veh_battery=[25.0, INF]),
        [[1, 3, 2]],
        [EV],
        [[0.0, 16.0, 0.0]],
        ["route 0: battery 26.0 > capacity 25.0 at 3"],
    ),
    (
        "over-charged-reported-where-it-happened",
        line(veh_battery=[25.0, INF]),
        [[1, 3, 2]],
        [EV],
        [[0.0, 30.0, 0.0]],
        ["route 0: battery 40.0 > capacity 25.0 at 3"],
    ),
    (
        "charges-at-a-stop",
        line(),
        [[1, 2]],
        [EV],
        [[1.0, 0.0]],
        ["route 0: charges 1.0 at 1, not a station"],
    ),
    (
        "negative-charge",
        line(),
        [[3, 1, 2]],
        [EV],
        [[-0.5, 0.0, 0.0]],
        ["route 0: charges -0.5 at 3, not a station"],
    ),
    (
        "truck-charges",
        line(),
        [[1, 3, 2]],
        [TRUCK],
        [[0.0, 1.0, 0.0]],
        [
            "route 0: leaves with load 5.0 > capacity 4.0 (dim 0)",
            "route 0: charges 1.0 at 3, not a station",
        ],
    ),
    (
        "charge-list-too-short",
        line(),
        [[1, 2]],
        [EV],
        [[0.0]],
        ["route 0: 1 charge entries for 2 stops"],
    ),
    ("stop-missing", line(), [[1]], [EV], None, ["stop 2 not served"]),
    (
        "stop-twice",
        line(),
        [[1, 2], [2]],
        [EV, TRUCK],
        None,
        ["stop 2 served 2 times"],
    ),
]


@pytest.mark.parametrize(("name", "pb", "routes", "types", "charges", "expected"), INFEASIBLE)
def test_each_rule_reports_its_violation(
    name: str,
    pb: RoutingProblem,
    routes: list[list[int]],
    types: list[int] | None,
    charges: list[list[float]] | None,
    expected: list[str],
) -> None:
    assert check(pb, routes, types, charges) == expected


def test_a_small_necessary_charge_counts() -> None:
    pb = line(veh_battery=[39.5, INF], late=[42.0, 100.0, 100.0, 100.0])
    # 24.5 left at the station, 0.5 bought in 0.25 time units: home, battery empty, at 42.25.
    assert check(pb, [[1, 3, 2]], [EV]) == ["route 0: arrives at 0 at 42.250000 after 42.0"]
    assert check(pb, [[1, 3, 2]], [EV], [[0.0, 0.5, 0.0]]) == [
        "route 0: arrives at 0 at 42.250000 after 42.0"
    ]
    assert check(pb, [[1, 3, 2]], [EV], [[0.0, 0.0, 0.0]]) == [
        "route 0: battery at -0.500000 < 0 on arriving at 0"
    ]


def test_a_bad_charge_list_skips_only_its_own_route() -> None:
    assert check(line(), [[1], [2]], [TRUCK, TRUCK], [[0.0, 0.0], [0.0]]) == [
        "route 0: 2 charge entries for 1 stops"
    ]


def _edge_dist() -> np.ndarray:
    d = np.abs(X[:, None] - X[None, :])
    d[0, 1], d[1, 0] = 1.0, 1e-6
    return d


TOL = 1e-6
EDGES = [
    # Each value lands exactly on "limit + 1e-6" (the checker's tolerance), which is still feasible.
    ("load-leaving", line(delivery=[[0, 0], [4.0 + TOL, 0], [0, 0], [0, 0]]), [1], TRUCK, None),
    (
        "load-after-pickup",
        line(
            delivery=[[0, 0], [0, 0], [0, 0], [0, 0]],
            pickup=[[0, 0], [4.0 + TOL, 0], [0, 0], [0, 0]],
        ),
        [1],
        TRUCK,
        None,
    ),
    (
        "arrival",
        line(
            ttime=np.where(np.eye(4, k=1, dtype=bool), 10.0 + TOL, np.abs(X[:, None] - X[None, :]))
        ),
        [1],
        TRUCK,
        None,
    ),
    ("battery", line(dist=_edge_dist(), veh_battery=[1.0, INF]), [1], EV, None),
    ("negative-charge", line(), [3, 1], EV, [-TOL, 0.0]),
    ("charge-at-a-stop", line(), [1], EV, [TOL]),
]


@pytest.mark.parametrize(("name", "pb", "route", "vt", "charges"), EDGES)
def test_tolerance_edges_are_feasible(
    name: str, pb: RoutingProblem, route: list[int], vt: int, charges: list[float] | None
) -> None:
    if name == "arrival":
        assert float(pb.ttime[0, 1]) == 10.0 + TOL
        pb = line(ttime=pb.ttime, late=[100.0, 10.0, 100.0, 100.0])
    assert (
        check(pb, [route], [vt], None if charges is None else [charges], allow_unserved=True) == []
    )


def test_unserved_stops_only_when_allowed() -> None:
    assert check(line(), [[1]], [EV], allow_unserved=True) == []
    assert check(line(), [], [], allow_unserved=True) == []
    assert check(line(), [[2], [2]], [EV, TRUCK], allow_unserved=True) == ["stop 2 served 2 times"]


def test_stations_are_not_stops() -> None:
    # The station may be visited by several routes and never has to be.
    assert check(line(), [[1, 3], [3, 2]], [EV, TRUCK]) == []


@pytest.mark.parametrize(
    ("route", "battery", "expected"),
    [
        ([1, 2], 50.0, [0.0, 0.0]),
        ([1, 3, 2], 50.0, [0.0, 0.0, 0.0]),  # 35 left at the station: enough to go home
        ([1, 3, 2], 25.0, [0.0, 15.0, 0.0]),  # 10 left, 25 needed
        ([3, 1, 3, 2], 25.0, [0.0, 0.0, 25.0, 0.0]),  # first visit: the next station is in reach
        ([3, 1, 3, 2], 20.0, [5.0, 0.0, 20.0, 0.0]),  # the second buy counts the first one
        ([3, 2], 20.0, [15.0, 0.0]),  # 25 needed but the battery holds 20: fill it
        ([1, 2], INF, [0.0, 0.0]),
    ],
)
def test_recharge_policy_buys_just_enough(
    route: list[int], battery: float, expected: list[float]
) -> None:
    pb = line(veh_battery=[battery, INF])
    assert _just_enough(pb, route, battery, 1.0) == pytest.approx(expected)


def test_capped_recharge_still_runs_out() -> None:
    pb = line(veh_battery=[20.0, INF])
    # 15 used to reach the station, 15 bought (not the 25 needed): 5 short on the way home.
    assert check(pb, [[3, 2, 1]], [EV]) == ["route 0: battery at -5.000000 < 0 on arriving at 0"]


def _plan(routes: list[list[int]], types: list[int], distance: float, **kw: Any) -> RoutePlan:
    charges = kw.pop("charges", [[0.0] * len(r) for r in routes])
    return RoutePlan(
        routes=tuple(tuple(r) for r in routes),
        vehicle_types=tuple(types),
        charges=tuple(tuple(c) for c in charges),
        distance=distance,
        **kw,
    )


def test_route_distance_includes_the_way_back() -> None:
    assert route_distance(line(), [[1, 2]]) == 40.0
    assert route_distance(line(), [[1], [2]]) == 60.0
    assert route_distance(line(), [[2, 3, 1]]) == 40.0
    assert route_distance(line(), []) == 0.0


@pytest.mark.parametrize(
    ("reported", "errors"),
    [
        (40.0, []),
        (40.0000005, []),
        (39.9999995, []),
        (40.5, ["reported distance 40.5 but the routes measure 40.0"]),
        (39.99, ["reported distance 39.99 but the routes measure 40.0"]),
    ],
)
def test_plan_reported_distance(reported: float, errors: list[str]) -> None:
    assert check_plan(line(), _plan([[1, 2]], [EV], reported)) == errors


def test_plan_passes_its_charges_and_types() -> None:
    pb = line(veh_battery=[25.0, INF])
    assert check_plan(pb, _plan([[1, 3, 2]], [EV], 40.0, charges=[[0.0, 15.0, 0.0]])) == []
    assert check_plan(pb, _plan([[1, 3, 2]], [EV], 40.0, charges=[[0.0, 14.0, 0.0]])) == [
        "route 0: battery at -1.000000 < 0 on arriving at 0"
    ]
    assert check_plan(line(), _plan([[1], [2]], [EV, EV], 60.0)) == [
        "2 routes of type 0, only 1 vehicles"
    ]


def test_unserved_plan_needs_the_flag() -> None:
    plan = _plan([[1]], [EV], 20.0, unserved=(2,))
    assert check_plan(line(), plan) == ["stop 2 not served"]
    assert check_plan(line(), plan, allow_unserved=True) == []
