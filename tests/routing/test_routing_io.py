"""Benchmark-format readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from routing import ProblemError, read_evrptw, read_solomon


def test_read_solomon(data_dir: Path) -> None:
    p = read_solomon(data_dir / "solomon" / "C101.txt")
    assert p.n_nodes == 101
    assert p.labels[:3] == (0, 1, 2)
    assert int(p.veh_count[0]) == 25
    assert float(p.veh_capacity[0, 0]) == 200.0
    assert p.dist[0, 1] == pytest.approx(np.hypot(45 - 40, 68 - 50))
    assert (p.ttime == p.dist).all()
    assert p.late[0] == 1236
    assert p.service[1] == 90
    assert p.delivery[2, 0] == 30
    assert p.is_simple


def test_read_evrptw(data_dir: Path) -> None:
    p = read_evrptw(data_dir / "evrptw" / "c101_21.txt")
    assert p.labels[0] == "D0"
    assert p.labels[1] == "S0"
    assert "C100" in p.labels
    assert p.stations.size == 21
    assert p.customers.size == 100
    assert float(p.veh_battery[0]) == pytest.approx(79.69)
    assert float(p.station_rate[p.stations[0]]) == pytest.approx(3.39)
    assert float(p.veh_capacity[0, 0]) == 200.0
    assert not p.is_simple


def test_reader_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("X\nVEHICLE\nNUMBER CAPACITY\n 25 200\nCUSTOMER\n 0 1 2 3\n")
    with pytest.raises(ProblemError) as info:
        read_solomon(bad)
    assert info.value.field == "bad.txt:6"
    with pytest.raises(ProblemError):
        read_solomon(tmp_path / "missing.txt")
    with pytest.raises(ProblemError) as info2:
        read_evrptw(bad)
    assert info2.value.field.startswith("bad.txt.")
