"""The routing package's public surface is deliberate: pin it."""

from __future__ import annotations

import routing

EXPECTED = {
    "AllocationParams",
    "AllocationProblem",
    "AllocationResult",
    "ChargingPile",
    "Depot",
    "Fleet",
    "PlanParams",
    "ProblemError",
    "Reservation",
    "ReservationBook",
    "ReservationError",
    "RoutePlan",
    "RoutingError",
    "RoutingProblem",
    "SolveError",
    "StopSite",
    "allocate",
    "build_problem",
    "check_plan",
    "check_routes",
    "generate_city",
    "plan_routes",
    "read_evrptw",
    "read_solomon",
    "read_vrplib",
    "read_vrplib_solution",
    "stops_from_allocation",
    "warm_up",
    "warm_up_planner",
}


def test_exported_names() -> None:
    assert set(routing.__all__) == EXPECTED
    for name in routing.__all__:
        assert getattr(routing, name) is not None


def test_error_tree() -> None:
    assert issubclass(routing.ProblemError, routing.RoutingError)
    assert issubclass(routing.SolveError, routing.RoutingError)
    assert issubclass(routing.ReservationError, routing.RoutingError)
    err = routing.ProblemError("parcels[2].w", "missing")
    assert err.field == "parcels[2].w"
    assert "parcels[2].w" in str(err)


def test_problems_and_results_cross_process_boundaries() -> None:
    """The hub runs solves in a process pool: inputs and outputs must pickle."""
    import multiprocessing
    import pickle
    from concurrent.futures import ProcessPoolExecutor

    import numpy as np

    problem = routing.generate_city(n_parcels=50, n_compartments=80, n_sites=5, seed=1)
    again = pickle.loads(pickle.dumps(problem))
    np.testing.assert_array_equal(again.parcel_dims, problem.parcel_dims)
    # spawn, as the hub does: a forked child of a process with live threads (gRPC, SQLite,
    # numba) can deadlock on a lock some thread held at the fork.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        result = pool.submit(routing.allocate, problem).result(timeout=120)
    assert result.placed + result.unplaced == problem.n_parcels
    assert problem.check(result.assignments) == []
    plan = pickle.loads(
        pickle.dumps(
            routing.RoutePlan(routes=((1,),), vehicle_types=(0,), charges=((0.0,),), distance=1.0)
        )
    )
    assert plan.vehicles == 1
