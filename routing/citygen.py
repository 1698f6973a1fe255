"""Seeded generator of a synthetic city for allocator benchmarks and tests.

Sites are scattered over a metropolitan area in dense districts; each site has cabinets built from
a catalogue of compartment models; parcels come from a catalogue of standard e-commerce boxes plus
irregular ones.  Demand per site varies more than capacity does, so some sites overflow to their
neighbours and some sizes run short: the regime where a greedy allocator goes wrong.
"""

from __future__ import annotations

import numpy as np

from routing.allocation import AllocationProblem

__all__ = ["COMPARTMENT_MODELS", "generate_city"]

#: (w, h, d mm, max kg, zone code) of the compartment models cabinets are built from.
COMPARTMENT_MODELS: tuple[tuple[int, int, int, float, int], ...] = (
    (100, 350, 500, 5.0, 0),
    (200, 350, 500, 10.0, 0),
    (300, 350, 500, 15.0, 0),
    (450, 400, 550, 25.0, 0),
    (150, 150, 900, 10.0, 0),
    (200, 300, 400, 10.0, 1),
    (350, 350, 450, 20.0, 1),
)
# Compartments of each model in one cabinet column set (a cabinet has 40-80 compartments).
_CABINET_MIX = np.array([0.30, 0.30, 0.18, 0.08, 0.04, 0.06, 0.04])
_BOXES = np.array(
    [
        [80, 200, 300],
        [100, 250, 350],
        [150, 200, 300],
        [100, 300, 400],
        [180, 250, 350],
        [200, 300, 450],
        [250, 300, 400],
        [280, 330, 480],
        [350, 380, 500],
        [120, 120, 800],
        [60, 160, 230],
        [190, 290, 390],
    ],
    np.float64,
)
_BOX_P = np.array([0.10, 0.14, 0.10, 0.10, 0.12, 0.08, 0.07, 0.05, 0.04, 0.03, 0.10, 0.07])


def generate_city(
    *,
    n_parcels: int = 100_000,
    n_compartments: int = 130_000,
    n_sites: int = 2000,
    seed: int = 0,
    radius_m: float = 2000.0,
    occupied_share: float = 0.05,
) -> AllocationProblem:
    """A reproducible city: ``seed`` fixes everything."""
    rng = np.random.default_rng(seed)
    # Districts: Gaussian clusters over a ~40 km square around a reference point.
    lat0, lon0 = 31.23, 121.47
    n_districts = max(1, n_sites // 100)
    centres = rng.uniform(-0.18, 0.18, size=(n_districts, 2))
    which = rng.integers(0, n_districts, n_sites)
    offs = rng.normal(0.0, 0.02, size=(n_sites, 2))
    lat = lat0 + centres[which, 0] + offs[:, 0]
    lon = lon0 + centres[which, 1] + offs[:, 1]

    # Capacity per site: proportional to a popularity with noise; demand follows popularity.
    pop = rng.gamma(2.0, 1.0, n_sites)
    cap_w = pop * rng.uniform(0.6, 1.4, n_sites)
    comp_site = rng.choice(n_sites, n_compartments, p=cap_w / cap_w.sum())
    comp_model = rng.choice(len(COMPARTMENT_MODELS), n_compartments, p=_CABINET_MIX)
    models = np.array(COMPARTMENT_MODELS, np.float64)
    comp_dims = models[comp_model, :3]
    order = np.argsort(comp_site, kind="stable")
    comp_site, comp_model, comp_dims = comp_site[order], comp_model[order], comp_dims[order]

    parcel_site = rng.choice(n_sites, n_parcels, p=pop / pop.sum())
    box = rng.choice(len(_BOXES), n_parcels, p=_BOX_P)
    dims = _BOXES[box].copy()
    irregular = rng.random(n_parcels) < 0.3
    dims[irregular] = np.round(rng.uniform(30, 380, size=(int(irregular.sum()), 3)) / 10.0) * 10.0
    dims = rng.permuted(dims, axis=1)  # parcels arrive in any orientation
    kg = np.round(rng.gamma(1.6, 2.0, n_parcels), 1) + 0.1
    # Chilled goods (groceries) come in the smaller boxes.
    chilled = (rng.random(n_parcels) < 0.12) & (np.prod(dims, axis=1) < 25e6)
    return AllocationProblem(
        radius_m=radius_m,
        site_ids=tuple(f"S{i:05d}" for i in range(n_sites)),
        site_lat=lat,
        site_lon=lon,
        comp_ids=tuple(f"C{i:07d}" for i in range(n_compartments)),
        comp_site=comp_site,
        comp_dims=comp_dims,
        comp_max_kg=models[comp_model, 3],
        comp_zone=models[comp_model, 4].astype(np.int8),
        comp_free=rng.random(n_compartments) >= occupied_share,
        comp_last_used=rng.uniform(0.0, 86_400.0, n_compartments),
        parcel_ids=tuple(f"P{i:07d}" for i in range(n_parcels)),
        parcel_dims=dims,
        parcel_kg=kg,
        parcel_zone=chilled.astype(np.int8),
        parcel_site=parcel_site,
    )
