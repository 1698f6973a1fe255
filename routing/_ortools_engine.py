"""OR-Tools routing engine: VRPTW with pickups and several load dimensions (no charging).

Integer model: times and distances are scaled by ``SCALE`` and travel times rounded up, time
windows' closing times rounded down, so that an integer-feasible plan is feasible in floats.
"""

from __future__ import annotations

import math
import time

import numpy as np

from routing.errors import ProblemError, SolveError
from routing.problem import PlanParams, RoutePlan, RoutingProblem

__all__ = ["solve_ortools"]

SCALE = 1000


def solve_ortools(problem: RoutingProblem, params: PlanParams) -> RoutePlan:
    """Solve with OR-Tools (parallel cheapest insertion, then guided local search).

    Raises:
        ProblemError: the problem has electric vehicles or charging stations.
        SolveError: OR-Tools found no solution within the time limit.
    """
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    pb = problem
    if pb.has_ev or pb.is_station.any():
        raise ProblemError("engine", "the OR-Tools engine does not model charging; use 'sisr'")
    t0 = time.perf_counter()
    cust = pb.customers
    nodes = np.concatenate([[0], cust]).astype(np.int64)  # OR-Tools index -> problem node
    n = nodes.size
    counts = np.minimum(pb.veh_count, max(1, cust.size))
    vtype = np.repeat(np.arange(counts.size), counts)
    nv = int(vtype.size)
    dist = np.rint(pb.dist[np.ix_(nodes, nodes)] * SCALE).astype(np.int64)
    travel = np.ceil(pb.ttime[np.ix_(nodes, nodes)] * SCALE - 1e-9).astype(np.int64)
    service = np.ceil(pb.service[nodes] * SCALE - 1e-9).astype(np.int64)
    transit = (travel + service[:, None]).tolist()
    dist_l = dist.tolist()
    manager = pywrapcp.RoutingIndexManager(n, nv, 0)
    model = pywrapcp.RoutingModel(manager)

    def dist_cb(i: int, j: int) -> int:
        return int(dist_l[manager.IndexToNode(i)][manager.IndexToNode(j)])

    def time_cb(i: int, j: int) -> int:
        return int(transit[manager.IndexToNode(i)][manager.IndexToNode(j)])

    dcb = model.RegisterTransitCallback(dist_cb)
    model.SetArcCostEvaluatorOfAllVehicles(dcb)
    for v in range(nv):
        model.SetFixedCostOfVehicle(round(pb.veh_fixed_cost[vtype[v]] * SCALE), v)
    tcb = model.RegisterTransitCallback(time_cb)
    horizon = math.floor(pb.late[0] * SCALE)
    model.AddDimension(tcb, horizon, horizon, False, "time")
    tdim = model.GetDimensionOrDie("time")
    for k, node in enumerate(nodes.tolist()):
        lo = math.ceil(pb.early[node] * SCALE - 1e-9)
        hi = math.floor(pb.late[node] * SCALE + 1e-9)
        if k == 0:
            for v in range(nv):
                tdim.CumulVar(model.Start(v)).SetRange(lo, hi)
                tdim.CumulVar(model.End(v)).SetRange(lo, hi)
        else:
            tdim.CumulVar(manager.NodeToIndex(k)).SetRange(lo, hi)
    solver = model.solver()
    for d in range(pb.delivery.shape[1]):
        dem = np.rint(pb.delivery[nodes, d] * SCALE).astype(np.int64).tolist()
        pick = np.rint(pb.pickup[nodes, d] * SCALE).astype(np.int64).tolist()
        caps = [math.floor(pb.veh_capacity[vtype[v], d] * SCALE) for v in range(nv)]
        dcb_i = model.RegisterUnaryTransitCallback(
            lambda i, dem=dem: int(dem[manager.IndexToNode(i)])
        )
        model.AddDimensionWithVehicleCapacity(dcb_i, 0, caps, True, f"deliv{d}")
        if any(pick):
            # On board = deliveries still to drop + pickups so far; it starts at the route's
            # total delivery, which the delivery dimension's end cumul measures.
            net = model.RegisterUnaryTransitCallback(
                lambda i, dem=dem, pick=pick: int(
                    pick[manager.IndexToNode(i)] - dem[manager.IndexToNode(i)]
                )
            )
            model.AddDimensionWithVehicleCapacity(net, 0, caps, False, f"load{d}")
            ld = model.GetDimensionOrDie(f"load{d}")
            dd = model.GetDimensionOrDie(f"deliv{d}")
            for v in range(nv):
                solver.Add(ld.CumulVar(model.Start(v)) == dd.CumulVar(model.End(v)))
    sp = pywrapcp.DefaultRoutingSearchParameters()
    sp.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    sp.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    sp.time_limit.FromMilliseconds(int(params.time_limit * 1000))
    try:
        sol = model.SolveWithParameters(sp)
    except Exception as exc:  # OR-Tools raises plain exceptions from SWIG
        raise SolveError(f"OR-Tools routing failed: {exc}") from exc
    if sol is None:
        raise SolveError(f"OR-Tools found no solution (status {model.status()})")
    routes: list[tuple[int, ...]] = []
    types: list[int] = []
    for v in range(nv):
        idx = sol.Value(model.NextVar(model.Start(v)))
        seq: list[int] = []
        while not model.IsEnd(idx):
            seq.append(int(nodes[manager.IndexToNode(idx)]))
            idx = sol.Value(model.NextVar(idx))
        if seq:
            routes.append(tuple(seq))
            types.append(int(vtype[v]))
    total = 0.0
    for r in routes:
        prev = 0
        for node in r:
            total += float(pb.dist[prev, node])
            prev = node
        total += float(pb.dist[prev, 0])
    return RoutePlan(
        routes=tuple(routes),
        vehicle_types=tuple(types),
        charges=tuple((0.0,) * len(r) for r in routes),
        distance=total,
        seconds=time.perf_counter() - t0,
        engine="ortools",
    )
