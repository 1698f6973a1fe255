"""The routing subcommands, through the same argparse wiring as the root CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from routing import AllocationProblem
from routing.cli import register


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lockerhub")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def _problem() -> dict[str, object]:
    return {
        "radius_m": 2000,
        "sites": [{"id": "A", "lat": 31.2, "lon": 121.4}, {"id": "B", "lat": 31.205, "lon": 121.4}],
        "compartments": [
            {
                "id": "A1",
                "site": "A",
                "w": 300,
                "h": 300,
                "d": 400,
                "max_kg": 10,
                "zone": "ambient",
            },
            {
                "id": "B1",
                "site": "B",
                "w": 300,
                "h": 300,
                "d": 400,
                "max_kg": 10,
                "zone": "ambient",
            },
        ],
        "parcels": [
            {"id": "p1", "w": 100, "h": 200, "d": 300, "kg": 2, "zone": "ambient", "site": "A"},
            {"id": "p2", "w": 300, "h": 100, "d": 200, "kg": 2, "zone": "ambient", "site": "A"},
            {"id": "p3", "w": 100, "h": 100, "d": 100, "kg": 1, "zone": "chilled", "site": "A"},
        ],
    }


def test_allocate_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "problem.json"
    path.write_text(json.dumps(_problem()))
    assert run(["allocate", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"assignments", "unplaced", "cost", "seconds"}
    assert sorted(a["compartment"] for a in out["assignments"]) == ["A1", "B1"]
    assert out["unplaced"] == ["p3"]
    problem = AllocationProblem.from_json(_problem())
    index = {c: i for i, c in enumerate(problem.comp_ids)}
    pidx = {p: i for i, p in enumerate(problem.parcel_ids)}
    a = np.full(3, -1, np.int64)
    for item in out["assignments"]:
        a[pidx[item["parcel"]]] = index[item["compartment"]]
    assert out["cost"] == pytest.approx(problem.cost(a), abs=1e-5)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({**_problem(), "radius_m": "far"}), "radius_m"),
        (json.dumps({k: v for k, v in _problem().items() if k != "sites"}), "sites"),
    ],
)
def test_allocate_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, needle: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert run(["allocate", str(path)]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err


def test_allocate_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["allocate", str(tmp_path / "nope.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_plan_routes_solomon_json(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = data_dir / "solomon" / "C101.txt"
    assert run(["plan-routes", "--solomon", str(path), "--seconds", "0.5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"routes", "distance", "vehicles"}
    assert sorted(c for r in out["routes"] for c in r) == list(range(1, 101))
    assert out["vehicles"] == len(out["routes"])


def test_plan_routes_evrptw_labels(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = data_dir / "evrptw" / "r102_21.txt"
    assert run(["plan-routes", "--evrptw", str(path), "--seconds", "0.5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    labels = [x for r in out["routes"] for x in r]
    assert sorted(x for x in labels if x.startswith("C")) == sorted(f"C{i}" for i in range(1, 101))
    assert all(x.startswith(("C", "S")) for x in labels)


def test_plan_routes_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plan-routes", "--solomon", str(tmp_path / "x.txt"), "--seconds", "1"]) == 2
    assert run(["plan-routes", "--solomon", str(tmp_path / "x.txt"), "--seconds", "0"]) == 2
    err = capsys.readouterr().err
    assert "time_limit" in err
    assert "Traceback" not in err
