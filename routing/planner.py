"""Public route-planning API: ``plan_routes`` and ``warm_up_planner``.

The default engine is the numba SISR search (``_sisr_kernel``); ``engine="ortools"`` runs
OR-Tools' routing solver with guided local search instead (no electric vehicles).
"""

from __future__ import annotations

import math
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace

import numpy as np

from routing import _sisr_kernel as K
from routing.errors import SolveError
from routing.problem import PlanParams, RoutePlan, RoutingProblem

__all__ = ["plan_routes", "warm_up_planner"]

_lock = threading.Lock()
_compiled = False
_NEAR_STATIONS = 4
_ADJACENT = 100  # nearest customers kept per node (the ruin's seeds reach a few routes)


def warm_up_planner() -> float:
    """Compile (or load from cache) the planner kernels; returns the seconds spent."""
    global _compiled
    with _lock:
        if _compiled:
            return 0.0
        t0 = time.perf_counter()
        for ev in (False, True):
            prob = _tiny(ev)
            _Search(prob, PlanParams(time_limit=1.0, max_iterations=3)).run(time_limit=1.0)
        _compiled = True
        return time.perf_counter() - t0


def plan_routes(problem: RoutingProblem, *, params: PlanParams) -> RoutePlan:
    """Plan routes serving every stop at minimum total distance.

    Args:
        problem: the immutable problem (node 0 is the depot).
        params: time limit, seed, engine and search parameters.

    Returns:
        The best plan found; stops that no vehicle could serve are listed in ``unserved``.

    Raises:
        ProblemError: the engine cannot model the problem (OR-Tools and electric vehicles).
        SolveError: the engine failed or found no solution at all.
    """
    if params.engine == "ortools":
        from routing._ortools_engine import solve_ortools

        return solve_ortools(problem, params)
    if params.workers > 1:
        return _plan_parallel(problem, params)
    compile_s = warm_up_planner()
    plan = _Search(problem, params).run(time_limit=params.time_limit)
    stats = dict(plan.stats)
    return RoutePlan(
        routes=plan.routes,
        vehicle_types=plan.vehicle_types,
        charges=plan.charges,
        distance=plan.distance,
        unserved=plan.unserved,
        seconds=plan.seconds,
        compile_seconds=compile_s,
        iterations=plan.iterations,
        engine="sisr",
        stats=stats,
    )


def _plan_parallel(problem: RoutingProblem, params: PlanParams) -> RoutePlan:
    """Independent searches with consecutive seeds in ``params.workers`` processes; best kept."""
    runs = [replace(params, seed=params.seed + i, workers=1) for i in range(params.workers)]
    # spawn, not fork: the caller may hold threads (the hub's event loop, numba's pool).
    ctx = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(params.workers, mp_context=ctx) as pool:
            plans = list(pool.map(_plan_one, [problem] * len(runs), runs))
    except (OSError, BrokenProcessPool) as exc:
        raise SolveError(f"parallel route search failed: {exc}") from exc
    best = min(plans, key=lambda p: (len(p.unserved), p.distance))
    stats = dict(best.stats)
    stats["workers"] = float(params.workers)
    stats["iterations_all_workers"] = float(sum(p.iterations for p in plans))
    return replace(best, stats=stats)


def _plan_one(problem: RoutingProblem, params: PlanParams) -> RoutePlan:
    return plan_routes(problem, params=params)


class _Search:
    """Arrays of one SISR run (built once per call; nothing is shared between calls)."""

    def __init__(self, problem: RoutingProblem, params: PlanParams) -> None:
        self.problem = problem
        self.params = params
        pb = problem
        n = pb.n_nodes
        cust = pb.customers
        self.customers = cust
        ncust = max(1, cust.size)
        bat = np.where(np.isfinite(pb.veh_battery), pb.veh_battery, 2.0 * K.BIG)
        dist_in = _transpose(pb.dist)
        self.P = K.Instance(
            dist=np.ascontiguousarray(pb.dist),
            ttime=np.ascontiguousarray(pb.ttime),
            early=np.ascontiguousarray(pb.early),
            late=np.ascontiguousarray(pb.late),
            service=np.ascontiguousarray(pb.service),
            deliv=np.ascontiguousarray(pb.delivery),
            pick=np.ascontiguousarray(pb.pickup),
            is_st=np.ascontiguousarray(pb.is_station),
            grate=np.ascontiguousarray(pb.station_rate),
            vcap=np.ascontiguousarray(pb.veh_capacity),
            vbat=bat.astype(np.float64),
            vcons=np.ascontiguousarray(pb.veh_consumption),
            dist_in=dist_in,
            ttime_in=dist_in if pb.ttime is pb.dist else _transpose(pb.ttime),
        )
        counts = np.minimum(pb.veh_count, ncust)
        rtype = np.repeat(np.arange(counts.size), counts).astype(np.int64)
        r = rtype.size
        # Route capacity in stops: every customer plus a few charging stops.  Kept tight because
        # the search copies the solution arrays on every iteration.
        lmax = _max_stops(pb) + 1 if problem.is_simple else ncust + min(ncust, 32) + 3
        self.states = [self._state(r, lmax, rtype, n) for _ in range(3)]
        st = pb.stations
        if st.size:
            order = np.argsort(pb.dist[:, st], axis=1, kind="stable")[:, :_NEAR_STATIONS]
            self.near_st = np.ascontiguousarray(st[order], np.int64)
        else:
            self.near_st = np.full((n, 1), -1, np.int64)
        # Nearest customers of every node: the ruin's strings start near a seed (a few routes
        # away at most, so _ADJACENT columns do), the insertion tries the routes of the first
        # ``params.granular`` (granular neighbourhood).
        self.adj = _nearest(pb.dist, cust, min(cust.size, max(_ADJACENT, params.granular)))
        self.gran = K.Granular(
            near=np.ascontiguousarray(self.adj[:, : min(cust.size, params.granular)]),
            route_mark=np.zeros(r, np.bool_),
            node_mark=np.zeros(n, np.bool_),
        )
        self.simple = pb.is_simple
        rt = pb.dist[0, cust] + pb.dist[cust, 0] if cust.size else np.zeros(1)
        self.penalty = float(10.0 * rt.max() + pb.veh_fixed_cost.max() + 1.0)
        if params.temperature is None:
            # SISR's published 100 -> 1 suit the Solomon scale (mean depot distance ~35,
            # 100 customers).  A typical arc grows with the area's side and shrinks with
            # sqrt(customers): measured on Gehring-Homberger 1000 (R1_10_1, RC2_10_1), (100, 1)
            # beat (550, 5.5) (the depot scale alone) by 0.8-2 points of gap at 20 s.
            scale = float(np.mean(pb.dist[0, cust])) / 35.0 if cust.size else 1.0
            scale *= math.sqrt(100.0 / max(100.0, float(cust.size)))
            scale = scale if scale > 0 else 1.0
            self.temps = (100.0 * scale, 1.0 * scale)
        else:
            self.temps = params.temperature
        self.scratch = np.zeros(lmax + 4, np.int64)
        self.need = np.zeros(lmax + 4)
        self.sdep = np.zeros(lmax + 4)
        self.scharge = np.zeros(lmax + 4)
        self.removed = np.zeros(max(1, cust.size), np.int64)

    def _state(self, r: int, lmax: int, rtype: np.ndarray, n: int) -> K.State:
        d = self.problem.delivery.shape[1]
        return K.State(
            routes=np.zeros((r, lmax), np.int64),
            rlen=np.zeros(r, np.int64),
            rtype=rtype.copy(),
            rdist=np.zeros(r),
            where=np.full(n, -1, np.int64),
            dep=np.zeros((r, lmax)),
            lat=np.zeros((r, lmax)),
            charge=np.zeros((r, lmax)),
            rload=np.zeros((r, d)),
            arc=np.zeros((r, lmax)),
            fixed=np.ascontiguousarray(self.problem.veh_fixed_cost),
            dirty=np.zeros(r, np.bool_),
        )

    def run(self, *, time_limit: float) -> RoutePlan:
        params = self.params
        S, B, C = self.states
        t0 = time.perf_counter()
        try:
            K.seed_rng(params.seed)
            K.construct(
                S,
                self.P,
                self.near_st,
                self.simple,
                self.customers,
                self.scratch,
                self.need,
                self.sdep,
                self.scharge,
                self.gran,
            )
            K.copy_state(S, B)
            iters = 0
            chunk = 50
            t_hi, t_lo = self.temps
            max_it = params.max_iterations
            while self.customers.size:
                now = time.perf_counter() - t0
                if now >= time_limit or (max_it is not None and iters >= max_it):
                    break
                if max_it is not None:
                    f0, n_it = iters / max(1, max_it), min(chunk, max_it - iters)
                    f1 = (iters + n_it) / max(1, max_it)
                else:
                    n_it = chunk
                    f0 = now / time_limit
                    f1 = min(1.0, f0 + 0.05)
                tc = time.perf_counter()
                temps = (t_hi * (t_lo / t_hi) ** f0, t_hi * (t_lo / t_hi) ** f1)
                K.search(S, B, C, self.P, self.near_st, self.adj, self.customers, self.simple,
                         n_it, *temps, self.penalty, params.avg_remove, params.max_string,
                         params.blink, self.scratch, self.need, self.sdep, self.scharge,
                         self.removed, self.gran)  # fmt: skip
                iters += n_it
                el = time.perf_counter() - tc
                if max_it is None:
                    # Aim each chunk at ~5 % of the budget so the cooling follows the clock.
                    target = 0.05 * time_limit
                    chunk = int(max(10, min(chunk * 4, n_it * target / max(el, 1e-6))))
        except (ValueError, IndexError, ZeroDivisionError) as exc:  # pragma: no cover
            raise SolveError(f"route search failed: {exc}") from exc
        seconds = time.perf_counter() - t0
        return self._plan(B, seconds, iters)

    def _plan(self, B: K.State, seconds: float, iters: int) -> RoutePlan:
        routes, rlen, rtype = B.routes, B.rlen, B.rtype
        out: list[tuple[int, ...]] = []
        types: list[int] = []
        charges: list[tuple[float, ...]] = []
        total = 0.0
        for r in range(rlen.size):
            n = int(rlen[r])
            if n == 0:
                continue
            seq = routes[r, :n].copy()
            dep = np.zeros(n + 1)
            ch = np.zeros(n + 1)
            code, dist = K.simulate(seq, n, int(rtype[r]), self.P, self.need, dep, ch)
            if code != K.OK:
                raise SolveError(f"internal error: route {len(out)} is infeasible (code {code})")
            total += dist
            out.append(tuple(int(x) for x in seq))
            types.append(int(rtype[r]))
            ev = bool(np.isfinite(self.problem.veh_battery[int(rtype[r])]))
            charges.append(tuple(float(x) for x in ch[:n]) if ev else (0.0,) * n)
        unserved = tuple(int(c) for c in self.customers if B.where[c] < 0)
        return RoutePlan(
            routes=tuple(out),
            vehicle_types=tuple(types),
            charges=tuple(charges),
            distance=total,
            unserved=unserved,
            seconds=seconds,
            iterations=iters,
            stats={"iterations_per_second": iters / max(seconds, 1e-9)},
        )


def _transpose(m: np.ndarray) -> np.ndarray:
    """``m.T`` in row order, or ``m`` itself when symmetric (no copy: the usual case)."""
    n = m.shape[0]
    # Block by block: a whole (n, n) comparison would allocate n^2 booleans at once.
    if all(np.array_equal(m[lo : lo + 256], m[:, lo : lo + 256].T) for lo in range(0, n, 256)):
        return np.ascontiguousarray(m)
    out = np.ascontiguousarray(m.T)
    out.setflags(write=False)  # read-only like the problem's arrays: one compiled signature
    return out


def _max_stops(pb: RoutingProblem) -> int:
    """An upper bound on the customers of one route (plain VRPTW): load, then horizon."""
    cust = pb.customers
    if cust.size == 0:
        return 1
    bound = int(cust.size)
    dem = pb.delivery[cust]
    cap = pb.veh_capacity.max(axis=0)
    for k in range(dem.shape[1]):
        pos = np.sort(dem[dem[:, k] > 0, k])
        if pos.size:
            # Customers with zero load fit anyway; the positive loads fill up the capacity.
            fits = int(np.searchsorted(np.cumsum(pos), cap[k] * (1 + 1e-12), side="right"))
            bound = min(bound, fits + int((dem[:, k] <= 0).sum()))
    svc = np.sort(pb.service[cust])
    horizon = float(pb.late[0] - pb.early[0])
    if np.isfinite(horizon) and svc[0] > 0:
        # Every customer served adds its service time inside the depot's horizon.
        bound = min(bound, int(np.searchsorted(np.cumsum(svc), horizon * (1 + 1e-12), "right")))
    return max(1, bound)


def _nearest(dist: np.ndarray, cust: np.ndarray, k: int) -> np.ndarray:
    """(N, k) the ``k`` customers nearest to every node, nearest first (-1 pads)."""
    n = dist.shape[0]
    out = np.full((n, max(k, 1)), -1, np.int64)
    if k == 0:
        return out
    for lo in range(0, n, 512):
        d = dist[lo : lo + 512][:, cust]
        part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < cust.size else None
        if part is None:
            idx = np.argsort(d, axis=1, kind="stable")
        else:
            sub = np.take_along_axis(d, part, axis=1)
            idx = np.take_along_axis(part, np.argsort(sub, axis=1, kind="stable"), axis=1)
        out[lo : lo + 512, :k] = cust[idx]
    return out


def _tiny(ev: bool) -> RoutingProblem:
    xy = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0], [2.0, 2.0], [5.0, 5.0]])
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    st = np.array([False, False, False, ev, False])
    return RoutingProblem(
        name="tiny",
        labels=(0, 1, 2, 3, 4),
        dist=d,
        ttime=d,
        early=np.zeros(5),
        late=np.full(5, 100.0),
        service=np.ones(5),
        delivery=np.array([[0.0], [1], [1], [0 if ev else 1], [1]]),
        pickup=np.zeros((5, 1)) if ev else np.array([[0.0], [0], [1], [0], [0]]),
        is_station=st,
        station_rate=np.where(st, 1.0, 0.0),
        veh_capacity=np.array([[3.0]]),
        veh_battery=np.array([12.0 if ev else np.inf]),
        veh_consumption=np.array([1.0 if ev else 0.0]),
        veh_count=np.array([3]),
        veh_fixed_cost=np.zeros(1),
    )
