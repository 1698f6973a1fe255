"""Fixtures of the routing tests: data paths and small problems."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from routing import AllocationProblem

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def make_allocation() -> Callable[[int, int, int, int], AllocationProblem]:
    """``make_allocation(seed, n_parcels, n_comps, n_sites)``: a random allocation problem."""
    return small_allocation


def small_allocation(seed: int, n_parcels: int, n_comps: int, n_sites: int) -> AllocationProblem:
    """A random allocation problem with few distinct sizes (so that groups and ties occur)."""
    rng = np.random.default_rng(seed)
    sizes = np.array([[100, 300, 400], [200, 300, 400], [300, 400, 500], [150, 150, 600]], float)
    lat = 31.2 + rng.uniform(0, 0.03, n_sites)
    lon = 121.4 + rng.uniform(0, 0.03, n_sites)
    cm = rng.integers(0, len(sizes), n_comps)
    pdims = rng.choice([50.0, 100, 150, 200, 250, 300, 350, 450], size=(n_parcels, 3))
    return AllocationProblem(
        radius_m=float(rng.choice([0.0, 1500.0, 3000.0])),
        site_ids=tuple(f"s{i}" for i in range(n_sites)),
        site_lat=lat,
        site_lon=lon,
        comp_ids=tuple(f"c{i}" for i in range(n_comps)),
        comp_site=rng.integers(0, n_sites, n_comps),
        comp_dims=sizes[cm],
        comp_max_kg=rng.choice([5.0, 20.0], n_comps),
        comp_zone=rng.choice([0, 1], n_comps, p=[0.8, 0.2]).astype(np.int8),
        comp_free=rng.random(n_comps) < 0.9,
        comp_last_used=rng.integers(0, 5, n_comps).astype(float),
        parcel_ids=tuple(f"p{i}" for i in range(n_parcels)),
        parcel_dims=pdims,
        parcel_kg=rng.choice([1.0, 4.0, 10.0], n_parcels),
        parcel_zone=rng.choice([0, 1], n_parcels, p=[0.8, 0.2]).astype(np.int8),
        parcel_site=rng.integers(0, n_sites, n_parcels),
    )
