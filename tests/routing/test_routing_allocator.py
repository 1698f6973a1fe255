"""Slot allocator: kernel == reference, exact == brute force, feasibility, LRU, JSON."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routing import AllocationParams, AllocationProblem, ProblemError, allocate, generate_city
from routing._alloc_prep import prepare
from routing.allocator import _run_numba, _run_python

Make = Callable[[int, int, int, int], AllocationProblem]

NUMBA = AllocationParams(engine="numba")
PYTHON = AllocationParams(engine="python")
EXACT = AllocationParams(engine="exact")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n_parcels=st.integers(0, 40),
    n_comps=st.integers(0, 40),
    n_sites=st.integers(1, 6),
)
def test_kernel_equals_reference(
    make_allocation: Make, seed: int, n_parcels: int, n_comps: int, n_sites: int
) -> None:
    problem = make_allocation(seed, n_parcels, n_comps, n_sites)
    prep = prepare(problem)
    fast, searches_fast = _run_numba(prep)
    slow, searches_slow = _run_python(problem)
    np.testing.assert_array_equal(fast, slow)
    assert searches_fast == searches_slow
    assert problem.check(fast) == []


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n_sites=st.integers(1, 4))
def test_kernel_is_optimal_like_the_exact_baseline(
    make_allocation: Make, seed: int, n_sites: int
) -> None:
    problem = make_allocation(seed, 30, 25, n_sites)
    fast = allocate(problem, params=NUMBA)
    exact = allocate(problem, params=EXACT)
    assert problem.check(exact.assignments) == []
    assert fast.placed == exact.placed
    # Both optimise the same integer (millilitre) costs; the float objective may differ by
    # the rounding of each parcel's volume and distance to whole millilitres.
    assert fast.cost == pytest.approx(exact.cost, abs=1e-3 * max(1, problem.n_parcels))


def _brute_force(problem: AllocationProblem) -> float:
    n, m = problem.n_parcels, problem.n_compartments
    options = [[-1] + [c for c in range(m) if problem.fits(p, c)] for p in range(n)]
    best = math.inf
    for combo in itertools.product(*options):
        used = [c for c in combo if c >= 0]
        if len(used) == len(set(used)):
            best = min(best, problem.cost(np.array(combo, np.int64)))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_exact_baseline_equals_brute_force(make_allocation: Make, seed: int) -> None:
    problem = make_allocation(seed, 5, 5, 2)
    exact = allocate(problem, params=EXACT)
    assert problem.check(exact.assignments) == []
    assert exact.cost == pytest.approx(_brute_force(problem), abs=1e-2)


def test_generated_city_matches_exact() -> None:
    problem = generate_city(n_parcels=3000, n_compartments=4000, n_sites=60, seed=3)
    fast = allocate(problem)
    exact = allocate(problem, params=EXACT)
    assert problem.check(fast.assignments) == []
    assert fast.placed == exact.placed
    assert fast.cost <= exact.cost * 1.0001
    assert fast.compile_seconds >= 0.0
    assert fast.seconds > 0.0


def _two_equal_compartments(last_used: list[float]) -> AllocationProblem:
    return AllocationProblem(
        radius_m=0.0,
        site_ids=("a",),
        site_lat=np.array([52.0]),
        site_lon=np.array([13.0]),
        comp_ids=("c0", "c1"),
        comp_site=np.array([0, 0]),
        comp_dims=np.array([[300.0, 300, 300]] * 2),
        comp_max_kg=np.array([10.0, 10]),
        comp_zone=np.zeros(2, np.int8),
        comp_free=np.array([True, True]),
        comp_last_used=np.array(last_used),
        parcel_ids=("p",),
        parcel_dims=np.array([[100.0, 100, 100]]),
        parcel_kg=np.array([1.0]),
        parcel_zone=np.zeros(1, np.int8),
        parcel_site=np.array([0]),
    )


@pytest.mark.parametrize(("last_used", "expected"), [([5.0, 1.0], 1), ([1.0, 5.0], 0)])
def test_least_recently_used_compartment_first(last_used: list[float], expected: int) -> None:
    result = allocate(_two_equal_compartments(last_used))
    assert result.assignments.tolist() == [expected]


def test_rotation_weight_zone_and_radius() -> None:
    base = _two_equal_compartments([0.0, 0.0]).to_json()
    base["parcels"][0].update(w=290, h=50, d=299)  # fits only after rotation; it does
    assert allocate(AllocationProblem.from_json(base)).placed == 1
    base["parcels"][0].update(kg=11.0)
    assert allocate(AllocationProblem.from_json(base)).placed == 0
    base["parcels"][0].update(kg=1.0, zone="chilled")
    assert allocate(AllocationProblem.from_json(base)).placed == 0


def test_json_round_trip_and_output_shape(make_allocation: Make) -> None:
    problem = make_allocation(7, 10, 12, 3)
    again = AllocationProblem.from_json(json.loads(json.dumps(problem.to_json())))
    a, b = allocate(problem), allocate(again)
    np.testing.assert_array_equal(a.assignments, b.assignments)
    out = a.to_json(problem)
    assert set(out) == {"assignments", "unplaced", "cost", "seconds"}
    assert len(out["assignments"]) + len(out["unplaced"]) == problem.n_parcels
    assert out["cost"] == pytest.approx(a.cost, abs=1e-5)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("radius_m"), "radius_m"),
        (lambda d: d["sites"][0].pop("lat"), "sites[0].lat"),
        (lambda d: d["compartments"][1].update(w="big"), "compartments[1].w"),
        (lambda d: d["compartments"][0].update(site="nowhere"), "compartments[0].site"),
        (lambda d: d["parcels"][0].update(zone="frozen"), "parcels[0].zone"),
        (lambda d: d["parcels"][0].update(w=-3), "parcels[0].w/h/d"),
        (lambda d: d.update(parcels={}), "parcels"),
    ],
)
def test_malformed_problem_names_the_field(mutate: object, field: str) -> None:
    data = _two_equal_compartments([0.0, 0.0]).to_json()
    mutate(data)  # type: ignore[operator]
    with pytest.raises(ProblemError) as info:
        AllocationProblem.from_json(data)
    assert info.value.field == field


def test_unplaced_when_nothing_fits() -> None:
    data = _two_equal_compartments([0.0, 0.0]).to_json()
    data["parcels"][0].update(w=400)
    result = allocate(AllocationProblem.from_json(data))
    assert result.placed == 0
    assert result.unplaced == 1
    assert result.cost == pytest.approx(10_000.0)


def test_python_engine_matches_numba_on_a_city() -> None:
    problem = generate_city(n_parcels=800, n_compartments=1000, n_sites=30, seed=5)
    np.testing.assert_array_equal(
        allocate(problem).assignments, allocate(problem, params=PYTHON).assignments
    )


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n_parcels=st.integers(0, 60))
def test_numpy_grouping_equals_kernel_grouping(
    make_allocation: Make, seed: int, n_parcels: int
) -> None:
    from routing._alloc_prep import group_numpy
    from routing.allocator import group_numba

    tab = prepare(make_allocation(seed, n_parcels, 30, 4))
    a, b = group_numba(tab), group_numpy(tab)
    for name in ("grp_site", "grp_fit", "grp_ptr", "grp_parcels", "parcel_vol"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.slow
def test_full_city_numba_equals_exact_optimum() -> None:
    city = generate_city(seed=2)
    fast = allocate(city)
    exact = allocate(city, params=EXACT)
    assert city.check(fast.assignments) == []
    assert fast.placed == exact.placed
    assert fast.cost == pytest.approx(exact.cost, rel=1e-6)
    assert fast.seconds * 20 < exact.seconds
