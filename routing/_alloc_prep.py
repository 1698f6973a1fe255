"""Shared preprocessing of the allocator: compartment models, type nodes, parcel groups (numpy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from routing.allocation import DISTANCE_COST_L_PER_KM, UNPLACED_PENALTY_L, AllocationProblem

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

#: Integer cost unit of the solvers: millilitres (objective is in litres).
ML_PER_L = 1000
UNPLACE_COST_ML = int(UNPLACED_PENALTY_L * ML_PER_L)
#: 50 L/km is 50 mL per metre.
COST_ML_PER_M = DISTANCE_COST_L_PER_KM * ML_PER_L / 1000.0


@dataclass(frozen=True, slots=True)
class Tables:
    """Compartment and site tables (numpy), and the parcels as plain arrays for the kernels."""

    n_parcels: int
    models: F64  # (K, 5) sorted w, h, d, max kg, zone of each compartment model
    model_vol: I64  # (K,) mL
    node_site: I64  # (N,) type node -> site; nodes sorted by site
    node_model: I64  # (N,)
    node_cap: I64  # (N,) free compartments of the node
    site_node_ptr: I64  # (S+1,)
    node_comp_ptr: I64  # (N+1,)
    node_comps: I64  # compartment indices per node, least recently used first
    nbr_ptr: I64
    nbr_idx: I64
    nbr_cost: I64  # 50 L/km in mL
    parcel_dims: F64
    parcel_kg: F64
    parcel_zone: I64
    parcel_site: I64
    bitmask_ok: bool  # site << K | mask fits in an int64 (else group with numpy)


@dataclass(frozen=True, slots=True)
class Groups:
    """Parcels grouped by (destination site, set of fitting models)."""

    grp_site: I64  # (G,)
    grp_fit: B  # (G, K)
    grp_ptr: I64  # (G+1,)
    grp_parcels: I64  # parcels by group, ascending volume inside a group
    parcel_vol: I64  # (P,) mL

    @property
    def gvol(self) -> I64:
        """Parcel volumes in group order."""
        return self.parcel_vol[self.grp_parcels]


def prepare(problem: AllocationProblem) -> Tables:
    """Type nodes, LRU order and neighbour sites, computed by the numba kernel."""
    from routing import _alloc_kernel as kernel

    (
        models,
        model_vol,
        node_site,
        node_model,
        node_cap,
        site_node_ptr,
        node_comp_ptr,
        node_comps,
        nbr_ptr,
        nbr_idx,
        nbr_cost,
    ) = kernel.build_tables(
        problem.comp_dims,
        problem.comp_max_kg,
        problem.comp_zone,
        problem.comp_free,
        problem.comp_site,
        problem.comp_last_used,
        problem.site_lat,
        problem.site_lon,
        float(problem.radius_m),
        COST_ML_PER_M,
    )
    site_bits = max(1, len(problem.site_ids).bit_length())
    return Tables(
        n_parcels=problem.n_parcels,
        models=models,
        model_vol=model_vol,
        node_site=node_site,
        node_model=node_model,
        node_cap=node_cap,
        site_node_ptr=site_node_ptr,
        node_comp_ptr=node_comp_ptr,
        node_comps=node_comps,
        nbr_ptr=nbr_ptr,
        nbr_idx=nbr_idx,
        nbr_cost=nbr_cost,
        parcel_dims=problem.parcel_dims,
        parcel_kg=problem.parcel_kg,
        parcel_zone=problem.parcel_zone.astype(np.int64),
        parcel_site=problem.parcel_site,
        bitmask_ok=models.shape[0] + site_bits <= 62,
    )


def group_numpy(tab: Tables, *, chunk: int = 16384) -> Groups:
    """Vectorised grouping (same result as the kernels' ``group_parcels``), any model count."""
    n = tab.n_parcels
    models = tab.models
    n_models = models.shape[0]
    psorted = np.sort(tab.parcel_dims, axis=1)
    parcel_vol = np.rint(np.prod(tab.parcel_dims, axis=1) / 1000.0).astype(np.int64)
    fit = np.zeros((n, n_models), np.bool_)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        f = (psorted[lo:hi, None, :] <= models[None, :, :3]).all(axis=2)
        f &= tab.parcel_kg[lo:hi, None] <= models[None, :, 3]
        f &= tab.parcel_zone[lo:hi, None] == models[None, :, 4]
        fit[lo:hi] = f
    # Big-endian bit rows: lexicographic row order == order of the integer (site, mask) key
    # that the kernels sort by, so both number the groups alike.
    width = 8 * ((n_models + 7) // 8)
    bits = np.zeros((n, width), np.bool_)
    bits[:, width - n_models :] = fit[:, ::-1]
    packed = np.column_stack([tab.parcel_site, np.packbits(bits, axis=1, bitorder="big")])
    if n:
        _, first, inv = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    else:
        first, inv = np.zeros(0, np.int64), np.zeros(0, np.int64)
    inv = inv.reshape(-1)
    grp_ptr = np.zeros(first.size + 1, np.int64)
    np.cumsum(np.bincount(inv, minlength=first.size), out=grp_ptr[1:])
    return Groups(
        grp_site=tab.parcel_site[first].astype(np.int64),
        grp_fit=np.ascontiguousarray(fit[first]),
        grp_ptr=grp_ptr,
        grp_parcels=np.lexsort((np.arange(n), parcel_vol, inv)).astype(np.int64),
        parcel_vol=parcel_vol,
    )


def _unique_rows(rows: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], I64]:
    """``np.unique(rows, axis=0, return_inverse=True)`` via lexsort (several times faster)."""
    if rows.shape[0] == 0:
        return np.zeros((0, rows.shape[1])), np.zeros(0, np.int64)
    order = np.lexsort(rows.T[::-1])
    srt = rows[order]
    new = np.ones(rows.shape[0], np.bool_)
    new[1:] = (srt[1:] != srt[:-1]).any(axis=1)
    ids = np.cumsum(new) - 1
    inv = np.empty(rows.shape[0], np.int64)
    inv[order] = ids
    return srt[new], inv
