"""Route planner: feasible on Solomon classes, E-VRPTW cases that need charging, hub data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from routing import (
    ChargingPile,
    Depot,
    Fleet,
    PlanParams,
    ProblemError,
    RoutingProblem,
    StopSite,
    build_problem,
    check_plan,
    check_routes,
    plan_routes,
    read_evrptw,
    read_solomon,
)

QUICK = PlanParams(time_limit=0.6, seed=1)


@pytest.mark.parametrize("name", ["C101", "C201", "R101", "R202", "RC105", "RC208"])
def test_solomon_every_class_feasible(data_dir: Path, name: str) -> None:
    problem = read_solomon(data_dir / "solomon" / f"{name}.txt")
    plan = plan_routes(problem, params=QUICK)
    assert check_plan(problem, plan) == []
    bks = json.loads((data_dir / "solomon" / "BKS.json").read_text())
    # A loose sanity bound (the benchmark measures the real gap): within 15 % of best known.
    assert plan.distance <= 1.15 * bks[f"{name}_distance"]["best_known_cost"]
    out = plan.to_json(problem)
    assert out["vehicles"] == len(out["routes"]) == plan.vehicles
    assert sorted(c for r in out["routes"] for c in r) == list(range(1, 101))


def test_same_seed_and_iterations_give_the_same_plan(data_dir: Path) -> None:
    problem = read_solomon(data_dir / "solomon" / "R105.txt")
    params = PlanParams(time_limit=60, seed=7, max_iterations=300)
    a = plan_routes(problem, params=params)
    b = plan_routes(problem, params=params)
    assert a.routes == b.routes
    assert a.iterations == 300


@pytest.mark.parametrize("name", ["c103", "r105", "rc104"])
def test_evrptw_feasible_with_recharging(data_dir: Path, name: str) -> None:
    problem = read_evrptw(data_dir / "evrptw" / f"{name}_21.txt")
    plan = plan_routes(problem, params=QUICK)
    assert plan.unserved == ()
    assert check_plan(problem, plan) == []
    # Some customers of these instances are too far for a round trip on one battery, so they
    # cannot be served without charging stops.
    c = problem.customers
    round_trip = (problem.dist[0, c] + problem.dist[c, 0]) * problem.veh_consumption[0]
    assert (round_trip > problem.veh_battery[0]).any()
    assert any(problem.is_station[n] for r in plan.routes for n in r)
    # The independent checker also rejects the plan once its charging is removed.
    bare = [[n for n in r if not problem.is_station[n]] for r in plan.routes]
    assert check_routes(problem, bare, vehicle_types=list(plan.vehicle_types)) != []


def _line_ev(battery: float) -> RoutingProblem:
    """Depot at 0, a customer at 10, a station at 5: a round trip of 20 on a battery of 12.

    One charging stop is not enough (5 + 10 > 12 after it, or 10 + 5 > 12 before it): the
    vehicle must charge on the way out and on the way back.
    """
    xy = np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 0.0]])
    d = np.abs(xy[:, None, 0] - xy[None, :, 0])
    return RoutingProblem(
        name="line",
        labels=("D0", "C1", "S1"),
        dist=d,
        ttime=d,
        early=np.zeros(3),
        late=np.array([100.0, 100.0, 100.0]),
        service=np.array([0.0, 1.0, 0.0]),
        delivery=np.array([[0.0], [1.0], [0.0]]),
        pickup=np.zeros((3, 1)),
        is_station=np.array([False, False, True]),
        station_rate=np.array([0.0, 0.0, 2.0]),
        veh_capacity=np.array([[5.0]]),
        veh_battery=np.array([battery]),
        veh_consumption=np.array([1.0]),
        veh_count=np.array([1]),
        veh_fixed_cost=np.zeros(1),
    )


def test_charging_needed_to_be_feasible_at_all() -> None:
    problem = _line_ev(12.0)
    assert check_routes(problem, [[1]]) != []  # without charging the battery runs out
    plan = plan_routes(problem, params=QUICK)
    assert check_plan(problem, plan) == []
    assert plan.to_json(problem)["routes"] == [["S1", "C1", "S1"]]
    assert plan.distance == pytest.approx(20.0)
    # Partial recharge: only what is needed is bought (3 out, 5 back; 8 in all, not 2 x full).
    assert plan.charges[0] == pytest.approx((3.0, 0.0, 5.0))


def test_unreachable_customer_is_reported_unserved() -> None:
    plan = plan_routes(_line_ev(4.0), params=QUICK)
    assert plan.unserved == (1,)
    assert plan.routes == ()


def _hub_case() -> tuple[RoutingProblem, list[StopSite]]:
    depot = Depot(id="hub", lat=31.20, lon=121.40, open_min=6 * 60, close_min=20 * 60)
    rng = np.random.default_rng(4)
    sites = [
        StopSite(
            id=f"L{i}",
            lat=31.20 + float(rng.uniform(-0.08, 0.08)),
            lon=121.40 + float(rng.uniform(-0.08, 0.08)),
            parcels=int(rng.integers(5, 40)),
            volume_l=float(rng.uniform(50, 400)),
            returns=int(rng.integers(0, 5)),
            returns_volume_l=float(rng.uniform(0, 40)),
            containers=int(rng.integers(0, 3)),
            open_min=7 * 60,
            close_min=19 * 60,
            zone="old-town" if i % 4 == 0 else None,
        )
        for i in range(25)
    ]
    fleet = [
        Fleet(name="van", count=3, parcels=200, volume_l=2500),
        Fleet(
            name="e-trike", count=4, parcels=120, volume_l=1200, battery_kwh=6.0, kwh_per_km=0.25
        ),
    ]
    piles = [ChargingPile(id="P1", lat=31.22, lon=121.42, power_kw=7.0)]
    problem = build_problem(
        depot, sites, fleet, piles=piles, zone_windows={"old-town": (9 * 60, 11 * 60)}
    )
    return problem, sites


def test_hub_data_with_pickups_zones_and_electric_vehicles() -> None:
    problem, sites = _hub_case()
    plan = plan_routes(problem, params=PlanParams(time_limit=1.0, seed=2))
    assert plan.unserved == ()
    assert check_plan(problem, plan) == []
    for i, s in enumerate(sites, 1):
        if s.zone == "old-town":
            assert (problem.early[i], problem.late[i]) == (9 * 60, 11 * 60)
    assert {problem.labels[n] for r in plan.routes for n in r} >= {s.id for s in sites}


def test_zone_without_window_is_a_problem_error() -> None:
    depot = Depot(id="hub", lat=31.2, lon=121.4)
    site = StopSite(id="L1", lat=31.21, lon=121.41, parcels=3, zone="z")
    with pytest.raises(ProblemError) as info:
        build_problem(depot, [site], [Fleet(name="van", count=1, parcels=10, volume_l=100)])
    assert info.value.field == "sites[L1].zone"


def test_ortools_engine_feasible_and_refuses_charging(data_dir: Path) -> None:
    problem = read_solomon(data_dir / "solomon" / "R201.txt")
    plan = plan_routes(problem, params=PlanParams(time_limit=1.0, engine="ortools"))
    assert check_plan(problem, plan) == []
    with pytest.raises(ProblemError):
        plan_routes(_line_ev(12.0), params=PlanParams(time_limit=1.0, engine="ortools"))


def test_params_validation() -> None:
    with pytest.raises(ProblemError) as info:
        PlanParams(time_limit=0)
    assert info.value.field == "time_limit"
    with pytest.raises(ProblemError):
        PlanParams(engine="magic")
