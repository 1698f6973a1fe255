"""Public slot-allocation API: ``allocate`` and ``warm_up``.

Three engines solve the same grouped min-cost-flow model: the numba kernel (default), its
plain-Python reference, and the exact OR-Tools baseline.  All are scored by
``AllocationProblem.cost``.  Call ``allocate`` off the event loop (a process pool): it is CPU-bound.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from routing import _alloc_kernel as kernel
from routing import _alloc_reference as reference
from routing._alloc_prep import (
    COST_ML_PER_M,
    UNPLACE_COST_ML,
    Groups,
    Tables,
    group_numpy,
    prepare,
)
from routing.allocation import AllocationParams, AllocationProblem, AllocationResult
from routing.exact import solve_exact_flows

__all__ = ["allocate", "warm_up"]

_warm_lock = threading.Lock()
_warm = False


def warm_up() -> float:
    """Compile (or load from the on-disk cache) the numba kernels; returns the seconds spent.

    The hub calls this once at start-up so that no request pays for compilation.
    """
    global _warm
    with _warm_lock:
        if _warm:
            return 0.0
        t0 = time.perf_counter()
        _run_numba(prepare(_tiny_problem()))
        _warm = True
        return time.perf_counter() - t0


def allocate(
    problem: AllocationProblem, *, params: AllocationParams | None = None
) -> AllocationResult:
    """Assign parcels to free compartments at minimum cost (the issue's objective).

    Args:
        problem: the immutable problem.
        params: engine choice; default is the numba kernel.

    Returns:
        The assignment with its cost, placed/unplaced counts, solve seconds and (apart) the
        compilation seconds paid by this call.

    Raises:
        SolveError: the exact engine's solver failed.
    """
    params = params or AllocationParams()
    compile_s = warm_up() if params.engine == "numba" or params.engine == "exact" else 0.0
    t0 = time.perf_counter()
    stats: dict[str, float] = {}
    if params.engine == "python":
        assign, searches = _run_python(problem)
        stats["searches"] = float(searches)
    else:
        prep = prepare(problem)
        stats["prepare_seconds"] = time.perf_counter() - t0
        if params.engine == "numba":
            assign, searches = _run_numba(prep)
            stats["searches"] = float(searches)
        else:
            assign, extra = solve_exact_flows(prep, group_numba(prep))
            stats.update(extra)
    seconds = time.perf_counter() - t0
    placed = int(np.count_nonzero(assign >= 0))
    return AllocationResult(
        assignments=assign,
        cost=problem.cost(assign),
        placed=placed,
        unplaced=problem.n_parcels - placed,
        seconds=seconds,
        compile_seconds=compile_s,
        stats=stats,
    )


def group_numba(tab: Tables) -> Groups:
    """Parcel groups from the kernel (numpy fallback when the model bitmask would overflow)."""
    if not tab.bitmask_ok:
        return group_numpy(tab)
    site, fit, ptr, parcels, vol = kernel.group_parcels(
        tab.parcel_dims, tab.parcel_kg, tab.parcel_zone, tab.parcel_site, tab.models
    )
    return Groups(grp_site=site, grp_fit=fit, grp_ptr=ptr, grp_parcels=parcels, parcel_vol=vol)


def _run_numba(tab: Tables) -> tuple[np.ndarray, int]:
    g = group_numba(tab)
    arc_ptr, arc_node, arc_cost = kernel.build_arcs(
        g.grp_site,
        g.grp_fit,
        tab.nbr_ptr,
        tab.nbr_idx,
        tab.nbr_cost,
        tab.site_node_ptr,
        tab.node_model,
        tab.model_vol,
    )
    flow, unplaced, searches = kernel.ssp(
        arc_ptr, arc_node, arc_cost, tab.node_cap, g.grp_ptr, g.gvol, UNPLACE_COST_ML
    )
    assign = kernel.expand(
        arc_ptr,
        arc_node,
        flow,
        unplaced,
        g.grp_ptr,
        g.grp_parcels,
        tab.node_comp_ptr,
        tab.node_comps,
        tab.n_parcels,
    )
    return np.asarray(assign, np.int64), int(searches)


def _run_python(problem: AllocationProblem) -> tuple[np.ndarray, int]:
    """The whole pipeline in plain Python, from the problem's arrays turned into lists."""
    (
        models,
        model_vol,
        _node_site,
        node_model,
        node_cap,
        site_node_ptr,
        node_comp_ptr,
        node_comps,
        nbr_ptr,
        nbr_idx,
        nbr_cost,
    ) = reference.build_tables(
        problem.comp_dims.tolist(),
        problem.comp_max_kg.tolist(),
        problem.comp_zone.tolist(),
        problem.comp_free.tolist(),
        problem.comp_site.tolist(),
        problem.comp_last_used.tolist(),
        problem.site_lat.tolist(),
        problem.site_lon.tolist(),
        float(problem.radius_m),
        COST_ML_PER_M,
    )
    if len(models) + max(1, len(problem.site_ids).bit_length()) <= 62:
        grp_site, grp_fit, grp_ptr, grp_parcels, vol = reference.group_parcels(
            problem.parcel_dims.tolist(),
            problem.parcel_kg.tolist(),
            problem.parcel_zone.tolist(),
            problem.parcel_site.tolist(),
            models,
        )
    else:  # same fallback as the numba path
        g = group_numpy(prepare(problem))
        grp_site, grp_fit, grp_ptr = g.grp_site.tolist(), g.grp_fit.tolist(), g.grp_ptr.tolist()
        grp_parcels, vol = g.grp_parcels.tolist(), g.parcel_vol.tolist()
    arc_ptr, arc_node, arc_cost = reference.build_arcs(
        grp_site, grp_fit, nbr_ptr, nbr_idx, nbr_cost, site_node_ptr, node_model, model_vol
    )
    flow, unplaced, searches = reference.ssp(
        arc_ptr,
        arc_node,
        arc_cost,
        node_cap,
        grp_ptr,
        [vol[p] for p in grp_parcels],
        UNPLACE_COST_ML,
    )
    assign = reference.expand(
        arc_ptr,
        arc_node,
        flow,
        unplaced,
        grp_ptr,
        grp_parcels,
        node_comp_ptr,
        node_comps,
        problem.n_parcels,
    )
    return np.asarray(assign, np.int64), searches


def _tiny_problem() -> AllocationProblem:
    """Two sites, three compartments, three parcels: enough to compile every kernel path."""
    return AllocationProblem(
        radius_m=2000.0,
        site_ids=("a", "b"),
        site_lat=np.array([52.0, 52.01]),
        site_lon=np.array([13.0, 13.0]),
        comp_ids=("c1", "c2", "c3"),
        comp_site=np.array([0, 1, 1]),
        comp_dims=np.array([[300.0, 300, 300], [400, 400, 400], [400, 400, 400]]),
        comp_max_kg=np.array([10.0, 20, 20]),
        comp_zone=np.array([0, 0, 0], np.int8),
        comp_free=np.array([True, True, True]),
        comp_last_used=np.zeros(3),
        parcel_ids=("p1", "p2", "p3"),
        parcel_dims=np.array([[100.0, 200, 300], [350, 100, 100], [500, 10, 10]]),
        parcel_kg=np.array([1.0, 2, 1]),
        parcel_zone=np.array([0, 0, 0], np.int8),
        parcel_site=np.array([0, 0, 1]),
    )
