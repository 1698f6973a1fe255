"""VRPLIB VRPTW reader, ``.sol`` reader, DIMACS costs and the ``plan-routes --vrplib`` command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from routing import PlanParams, ProblemError, check_plan, check_routes, plan_routes
from routing.feasibility import route_distance
from routing.vrplib import dimacs_distances, read_vrplib, read_vrplib_solution
from tests.routing.test_routing_cli import run

TINY = """NAME : tiny
TYPE : VRPTW
DIMENSION : 5
VEHICLES : 3
CAPACITY : 10
SERVICE_TIME : 1
EDGE_WEIGHT_TYPE : EUC_2D
NODE_COORD_SECTION
1 10 10
2 0 0
3 11 13
4 13 14
5 10 0
DEMAND_SECTION
1 4
2 4
3 0
4 5
5 5
TIME_WINDOW_SECTION
1 0 100
2 0 100
3 0 100
4 0 100
5 0 100
DEPOT_SECTION
3
-1
EOF
"""


def _write(tmp_path: Path, text: str, name: str = "x.vrp") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_dimacs_truncates_to_one_decimal() -> None:
    xy = np.array([[0.0, 0.0], [1.0, 3.0], [3.0, 4.0], [1.0, 1.0]])
    d = dimacs_distances(xy)
    # sqrt(10) = 3.162 truncates to 3.1 (rounding would give 3.2); 5 stays 5; sqrt(2) -> 1.4.
    assert d[0, 1] == pytest.approx(3.1, abs=1e-12)
    assert d[0, 2] == 5.0
    assert d[0, 3] == pytest.approx(1.4, abs=1e-12)
    assert d[1, 2] == pytest.approx(math.floor(10 * math.sqrt(5)) / 10, abs=1e-12)
    assert np.array_equal(d, d.T)
    assert (np.diag(d) == 0).all()


def test_dimacs_blocks_equal_the_direct_formula() -> None:
    rng = np.random.default_rng(3)
    xy = rng.integers(0, 500, size=(1100, 2)).astype(float)  # more rows than one block
    direct = np.floor(10 * np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))) / 10
    assert np.array_equal(dimacs_distances(xy), direct)


def test_read_tiny_instance_depot_first_and_file_order(tmp_path: Path) -> None:
    pb = read_vrplib(_write(tmp_path, TINY))
    assert pb.name == "tiny"
    assert pb.n_nodes == 5
    # Node 3 of the file is the depot; customers keep file order: 1, 2, 4, 5 -> 1, 2, 3, 4.
    assert pb.coords is not None
    assert pb.coords.tolist() == [[11, 13], [10, 10], [0, 0], [13, 14], [10, 0]]
    assert pb.labels == (0, 1, 2, 3, 4)
    assert pb.delivery[:, 0].tolist() == [0, 4, 4, 5, 5]
    assert pb.service.tolist() == [0, 1, 1, 1, 1]
    assert int(pb.veh_count[0]) == 3
    assert float(pb.veh_capacity[0, 0]) == 10
    assert pb.ttime is pb.dist  # one matrix when travel time equals distance
    assert pb.dist[0, 1] == pytest.approx(3.1)  # sqrt(10)
    assert pb.is_simple


def test_read_gh1000_and_its_best_known_solution(data_dir: Path) -> None:
    pb = read_vrplib(data_dir / "gh1000" / "C1_10_1.vrp")
    assert pb.n_nodes == 1001
    assert int(pb.veh_count[0]) == 250
    assert float(pb.veh_capacity[0, 0]) == 200
    assert float(pb.service[1]) == 90
    routes, cost = read_vrplib_solution(data_dir / "gh1000" / "C1_10_1.sol")
    assert len(routes) == 100
    assert sorted(c for r in routes for c in r) == list(range(1, 1001))
    assert check_routes(pb, routes) == []
    # The stated cost is reproduced only with truncated (DIMACS) distances.
    assert cost is not None
    assert route_distance(pb, routes) == pytest.approx(cost, abs=1e-6)
    exact = read_vrplib(data_dir / "gh1000" / "C1_10_1.vrp", round_func="none")
    assert route_distance(exact, routes) > cost + 1.0


BAD_CASES = [
    (TINY.replace("CAPACITY : 10\n", ""), "x.vrp.CAPACITY", "missing"),
    (TINY.replace("CAPACITY : 10", "CAPACITY : ten"), "x.vrp.CAPACITY", "not a number"),
    (TINY.replace("EUC_2D", "GEO"), "x.vrp.EDGE_WEIGHT_TYPE", "EUC_2D"),
    (TINY.replace("3\n-1", "-1"), "x.vrp.DEPOT_SECTION", "depot"),
    (TINY.replace("5 5\nTIME", "TIME"), "x.vrp.DEMAND_SECTION", "one row per node"),
    (TINY.replace("2 0 0\n", "2 0 zero\n"), "x.vrp:10", "not a number"),
    (TINY.replace("2 0 100\n", "2 0\n"), "x.vrp:22", "3 columns"),
    (TINY.replace("DIMENSION : 5", "DIMENSION : 6"), "x.vrp.DIMENSION", "6 nodes"),
    (TINY.replace("DEMAND_SECTION", "WEIRD_SECTION"), "x.vrp:14", "unsupported section"),
    (TINY.replace("4 0 100", "4 50 10"), "nodes[3].time_window", "opens after"),
    (TINY.replace("VEHICLES : 3", "VEHICLES : 2.5"), "x.vrp.VEHICLES", "integer"),
]


@pytest.mark.parametrize(("text", "field", "words"), BAD_CASES)
def test_malformed_vrplib_names_the_field(
    tmp_path: Path, text: str, field: str, words: str
) -> None:
    with pytest.raises(ProblemError) as info:
        read_vrplib(_write(tmp_path, text))
    assert info.value.field == field
    assert words in str(info.value)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(ProblemError, match="cannot read"):
        read_vrplib(tmp_path / "nope.vrp")
    binary = tmp_path / "b.vrp"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ProblemError, match="cannot read"):
        read_vrplib(binary)
    with pytest.raises(ProblemError, match="cannot read"):
        read_vrplib_solution(tmp_path / "nope.sol")


def test_solution_reader(tmp_path: Path) -> None:
    p = _write(tmp_path, "Route #1: 1 2\nRoute #2: 3\nCost 12.5\n", "a.sol")
    assert read_vrplib_solution(p) == ([[1, 2], [3]], 12.5)
    bad = _write(tmp_path, "Route #1: 1 x\n", "b.sol")
    with pytest.raises(ProblemError) as info:
        read_vrplib_solution(bad)
    assert info.value.field == "b.sol:1"
    with pytest.raises(ProblemError, match="no 'Route"):
        read_vrplib_solution(_write(tmp_path, "Cost 3\n", "c.sol"))


def test_plan_tiny_instance_is_optimal_and_feasible(tmp_path: Path) -> None:
    pb = read_vrplib(_write(tmp_path, TINY))
    plan = plan_routes(pb, params=PlanParams(time_limit=5, seed=0, max_iterations=200))
    assert check_plan(pb, plan) == []
    # Loads 4, 4, 5, 5 on vehicles of 10: two routes at least; brute force over pairings.
    best = math.inf
    for pair in ([1, 2], [1, 3], [1, 4], [2, 3], [2, 4], [3, 4]):
        rest = [c for c in (1, 2, 3, 4) if c not in pair]
        for a in (pair, pair[::-1]):
            for b in (rest, rest[::-1]):
                if not check_routes(pb, [a, b]):
                    best = min(best, route_distance(pb, [a, b]))
    assert plan.distance == pytest.approx(best)


def test_cli_vrplib_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, TINY)
    assert run(["plan-routes", "--vrplib", str(path), "--seconds", "0.3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"routes", "distance", "vehicles"}
    assert sorted(c for r in out["routes"] for c in r) == [1, 2, 3, 4]
    pb = read_vrplib(path)
    assert check_routes(pb, out["routes"]) == []
    assert out["distance"] == pytest.approx(route_distance(pb, out["routes"]))
    assert out["vehicles"] == len(out["routes"])


def test_cli_gh1000_numbers_customers_like_the_sol_files(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = data_dir / "gh1000" / "RC2_10_1.vrp"
    assert run(["plan-routes", "--vrplib", str(path), "--seconds", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(c for r in out["routes"] for c in r) == list(range(1, 1001))
    pb = read_vrplib(path)
    assert check_routes(pb, out["routes"]) == []
    assert out["distance"] == pytest.approx(route_distance(pb, out["routes"]), abs=1e-5)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--vrplib", "MISSING"], "cannot read"),
        (["--vrplib", "BAD"], "CAPACITY"),
        (["--vrplib", "GOOD", "--workers", "0"], "workers"),
    ],
)
def test_cli_vrplib_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    paths = {
        "MISSING": str(tmp_path / "missing.vrp"),
        "BAD": str(_write(tmp_path, TINY.replace("CAPACITY : 10\n", ""), "bad.vrp")),
        "GOOD": str(_write(tmp_path, TINY, "good.vrp")),
    }
    argv = [paths.get(a, a) for a in argv]
    assert run(["plan-routes", *argv, "--seconds", "0.2"]) == 2
    err = capsys.readouterr().err
    assert words in err
    assert "Traceback" not in err
