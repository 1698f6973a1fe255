"""`lockerhub sim` against a demo's work directory: what it says when the demo is not there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lockerhub.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out + captured.err


def test_a_cabinet_without_a_running_demo_names_the_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(["sim", "state", "--demo-dir", str(tmp_path), "--cabinet", "cab-01"], capsys)
    assert code == 2
    assert str(tmp_path / "controls.json") in out
    assert "lockerhub demo" in out


def test_an_unknown_cabinet_lists_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "controls.json").write_text(json.dumps({"cab-01": "127.0.0.1:1"}))
    code, out = run(["sim", "state", "--demo-dir", str(tmp_path), "--cabinet", "cab-09"], capsys)
    assert code == 2
    assert "cab-01" in out


def test_a_parcel_never_announced_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["sim", "deposit", "--demo-dir", str(tmp_path), "--parcel", "NOPE-1", "--wait", "0.5"]
    code, out = run(argv, capsys)
    assert code == 2
    assert "parcels.json" in out
    assert "NOPE-1" in out


def test_pickup_needs_a_code_or_a_parcel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(["sim", "pickup", "--control", "127.0.0.1:9"], capsys)
    assert code == 2
    assert "--code" in out
