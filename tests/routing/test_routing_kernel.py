"""The SISR kernel's fast pieces against plain references (simulation, brute force, checker)."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest

from routing import PlanParams, check_plan, check_routes, plan_routes, read_solomon
from routing import _sisr_kernel as K
from routing.feasibility import route_distance
from routing.planner import _max_stops, _Search, _transpose, warm_up_planner
from routing.problem import RoutingProblem
from routing.vrplib import read_vrplib, read_vrplib_solution


def _searched(problem: RoutingProblem, iters: int = 150, granular: int = 0) -> _Search:
    warm_up_planner()
    s = _Search(problem, PlanParams(seed=3, max_iterations=iters, granular=granular))
    s.run(time_limit=60)
    return s


def _routes(st: K.State) -> list[tuple[int, list[int]]]:
    return [(r, [int(x) for x in st.routes[r, : st.rlen[r]]]) for r in range(st.rlen.size)]


@pytest.mark.parametrize("name", ["R105", "C204", "RC101"])
def test_refresh_simple_equals_the_simulating_refresh(data_dir: Path, name: str) -> None:
    s = _searched(read_solomon(data_dir / "solomon" / f"{name}.txt"))
    S = s.states[0]
    A = K.State(*[a.copy() for a in S])
    for r in range(S.rlen.size):
        K.refresh_simple(r, S, s.P)
        K.refresh(r, A, s.P, s.need)
        n = int(S.rlen[r])
        assert S.rdist[r] == pytest.approx(A.rdist[r], abs=1e-9)
        assert np.allclose(S.dep[r, :n], A.dep[r, :n], atol=1e-9)
        assert np.allclose(S.lat[r, :n], A.lat[r, :n], atol=1e-9)
        assert np.allclose(S.arc[r, : n + 1], A.arc[r, : n + 1], atol=1e-12)
        if n:
            seq = [0, *S.routes[r, :n].tolist(), 0]
            arcs = [s.problem.dist[a, b] for a, b in itertools.pairwise(seq)]
            assert np.allclose(S.arc[r, : n + 1], arcs)


@pytest.mark.parametrize("name", ["R105", "C204", "RC101"])
def test_fast_insertion_check_equals_simulation(data_dir: Path, name: str) -> None:
    """The O(1) check from forward departures and backward latest starts vs driving the route."""
    s = _searched(read_solomon(data_dir / "solomon" / f"{name}.txt"))
    S = s.states[0]
    rng = np.random.default_rng(0)
    checked = 0
    for r, seq in _routes(S):
        if not seq:
            continue
        for c in rng.choice(s.customers, size=8, replace=False):
            if int(S.where[c]) == r:
                continue
            for pos in range(len(seq) + 1):
                fast = K.fast_insert_ok(
                    r, pos, c, S.routes, S.rlen, S.rtype, S.dep, S.lat, S.rload, s.P
                )
                cand = np.array([*seq[:pos], c, *seq[pos:]], np.int64)
                dep = np.zeros(cand.size)
                code, _ = K.simulate(cand, cand.size, 0, s.P, s.need, dep, np.zeros(cand.size))
                assert fast == (code == K.OK), (r, pos, c)
                checked += 1
    assert checked > 500


@pytest.mark.parametrize("name", ["R105", "C204"])
def test_best_insertion_equals_brute_force(data_dir: Path, name: str) -> None:
    """Full insertion (granular off) finds the cheapest position the independent checker accepts."""
    problem = read_solomon(data_dir / "solomon" / f"{name}.txt")
    s = _searched(problem)
    S = s.states[0]
    for c in s.customers[::9]:
        r0 = int(S.where[c])
        pos0 = int(np.flatnonzero(S.routes[r0, : S.rlen[r0]] == c)[0])
        K.remove_at(r0, pos0, S.routes, S.rlen)
        S.where[c] = -1
        S.rload[r0, 0] -= problem.delivery[c, 0]
        K.refresh_simple(r0, S, s.P)
        best, r, pos, _st, _side = K.best_insertion(
            c, S, s.P, s.near_st, True, 0.0, s.scratch, s.need, s.sdep, s.scharge, s.gran
        )
        ref = np.inf
        for _rr, seq in _routes(S):
            for p in range(len(seq) + 1):
                cand = [*seq[:p], int(c), *seq[p:]]
                if not check_routes(problem, [cand], allow_unserved=True):
                    delta = route_distance(problem, [cand]) - (
                        route_distance(problem, [seq]) if seq else 0.0
                    )
                    ref = min(ref, delta)
        assert best == pytest.approx(ref, abs=1e-7)
        K.insert_simple(c, r, pos, S, s.P)
        assert check_routes(problem, [seq for _r, seq in _routes(S) if seq]) == []


def test_granular_levels_keep_plans_feasible(data_dir: Path) -> None:
    problem = read_solomon(data_dir / "solomon" / "R101.txt")
    for granular in (0, 5, 40):
        params = PlanParams(seed=2, max_iterations=300, granular=granular)
        plan = plan_routes(problem, params=params)
        assert check_plan(problem, plan) == []


def test_asymmetric_travel_times_use_the_transposes(data_dir: Path) -> None:
    base = read_solomon(data_dir / "solomon" / "C101.txt")
    skew = np.triu(np.ones_like(base.ttime)) * 0.2  # one direction slower than the other
    problem = dataclasses.replace(base, ttime=base.ttime * (1 + skew))
    assert _transpose(problem.ttime) is not problem.ttime
    assert np.array_equal(_transpose(problem.ttime), problem.ttime.T)
    assert _transpose(base.dist) is base.dist or np.array_equal(_transpose(base.dist), base.dist)
    plan = plan_routes(problem, params=PlanParams(seed=1, max_iterations=400))
    assert check_plan(problem, plan) == []


def test_route_length_bound_holds_for_best_known_solutions(data_dir: Path) -> None:
    for name in ("C1_10_1", "R2_10_1", "RC2_10_1"):
        problem = read_vrplib(data_dir / "gh1000" / f"{name}.vrp")
        routes, _ = read_vrplib_solution(data_dir / "gh1000" / f"{name}.sol")
        assert max(len(r) for r in routes) <= _max_stops(problem)


def test_parallel_workers_keep_the_best(data_dir: Path) -> None:
    problem = read_solomon(data_dir / "solomon" / "RC105.txt")
    params = PlanParams(time_limit=0.5, seed=4, workers=2)
    plan = plan_routes(problem, params=params)
    assert check_plan(problem, plan) == []
    assert plan.stats["workers"] == 2
    assert plan.stats["iterations_all_workers"] >= plan.iterations
