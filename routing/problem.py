"""Route-planning data: the immutable problem, solver parameters and the resulting plan."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from routing.errors import ProblemError

__all__ = ["PlanParams", "RoutePlan", "RoutingProblem"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


def _ro(a: Any, dtype: type, name: str, shape: tuple[int, ...]) -> Any:
    if (
        isinstance(a, np.ndarray)
        and a.dtype == dtype
        and a.base is None
        and not a.flags.writeable
        and a.flags.c_contiguous
    ):
        # Already frozen and owning its data (a reader's matrix): no copy of (n, n) floats.
        arr: np.ndarray[Any, Any] = a
    else:
        arr = np.array(a, dtype=dtype, copy=True)
    if arr.shape != shape:
        raise ProblemError(name, f"expected shape {shape}, got {arr.shape}")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ProblemError(name, "contains NaN")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingProblem:
    """Vehicles leave node 0 (the depot) and return to it; other nodes are stops or stations.

    Attributes:
        labels: display label of every node (``"C12"``, ``"S5"``, or Solomon's customer numbers).
        dist: (N, N) distance matrix (the objective); ``ttime`` (N, N) travel times.
        early, late, service: time windows and service durations (node 0: the depot's horizon).
        delivery, pickup: (N, D) loads dropped and collected at each stop, D load dimensions
            (parcels, litres...).  A vehicle leaves with all its deliveries on board.
        is_station: charging piles (optional stops); ``station_rate`` the time to charge one
            energy unit there (the inverse recharging rate ``g``).
        veh_capacity: (T, D) per vehicle type; ``veh_battery`` (T,) energy (``inf``: not
            electric); ``veh_consumption`` energy per distance unit; ``veh_count`` fleet size;
            ``veh_fixed_cost`` added per used vehicle (0 for a pure distance objective).
    """

    name: str = "problem"
    labels: tuple[str | int, ...]
    dist: F64
    ttime: F64
    early: F64
    late: F64
    service: F64
    delivery: F64
    pickup: F64
    is_station: B
    station_rate: F64
    veh_capacity: F64
    veh_battery: F64
    veh_consumption: F64
    veh_count: I64
    veh_fixed_cost: F64
    coords: F64 | None = None

    def __post_init__(self) -> None:
        n = len(self.labels)
        if n < 1:
            raise ProblemError("labels", "needs at least the depot")
        dims = np.asarray(self.delivery).reshape(n, -1).shape[1]
        nt = np.asarray(self.veh_count).reshape(-1).shape[0]
        fix = object.__setattr__
        # Travel time equal to distance (the benchmark conventions) is kept as one array.
        same = self.ttime is self.dist
        fix(self, "dist", _ro(self.dist, np.float64, "dist", (n, n)))
        fix(self, "ttime", self.dist if same else _ro(self.ttime, np.float64, "ttime", (n, n)))
        for key in ("early", "late", "service", "station_rate"):
            fix(self, key, _ro(getattr(self, key), np.float64, key, (n,)))
        fix(
            self,
            "delivery",
            _ro(np.asarray(self.delivery).reshape(n, dims), np.float64, "delivery", (n, dims)),
        )
        fix(
            self,
            "pickup",
            _ro(np.asarray(self.pickup).reshape(n, dims), np.float64, "pickup", (n, dims)),
        )
        fix(self, "is_station", _ro(self.is_station, np.bool_, "is_station", (n,)))
        fix(
            self,
            "veh_capacity",
            _ro(
                np.asarray(self.veh_capacity).reshape(nt, dims),
                np.float64,
                "veh_capacity",
                (nt, dims),
            ),
        )
        fix(self, "veh_battery", _ro(self.veh_battery, np.float64, "veh_battery", (nt,)))
        fix(
            self, "veh_consumption", _ro(self.veh_consumption, np.float64, "veh_consumption", (nt,))
        )
        fix(self, "veh_count", _ro(self.veh_count, np.int64, "veh_count", (nt,)))
        fix(self, "veh_fixed_cost", _ro(self.veh_fixed_cost, np.float64, "veh_fixed_cost", (nt,)))
        if self.coords is not None:
            fix(self, "coords", _ro(self.coords, np.float64, "coords", (n, 2)))
        if not np.isfinite(self.dist).all() or (self.dist < 0).any():
            raise ProblemError("dist", "distances must be finite and >= 0")
        if not np.isfinite(self.ttime).all() or (self.ttime < 0).any():
            raise ProblemError("ttime", "travel times must be finite and >= 0")
        bad = np.flatnonzero(self.early > self.late)
        if bad.size:
            raise ProblemError(f"nodes[{bad[0]}].time_window", "opens after it closes")
        for key in (
            "service",
            "delivery",
            "pickup",
            "station_rate",
            "veh_capacity",
            "veh_consumption",
            "veh_fixed_cost",
        ):
            if (np.asarray(getattr(self, key)) < 0).any():
                raise ProblemError(key, "must be >= 0")
        if (self.veh_count < 0).any() or self.veh_count.sum() < 1:
            raise ProblemError("veh_count", "needs at least one vehicle")
        if (self.veh_battery <= 0).any():
            raise ProblemError("veh_battery", "must be > 0 (inf for a vehicle without battery)")
        if self.is_station[0]:
            raise ProblemError("is_station", "node 0 is the depot, not a station")
        st = self.is_station
        if (self.delivery[st] > 0).any() or (self.pickup[st] > 0).any():
            raise ProblemError("is_station", "stations carry no load")

    @property
    def n_nodes(self) -> int:
        """Number of nodes (depot, stops and stations)."""
        return len(self.labels)

    @property
    def customers(self) -> I64:
        """Indices of the stops every solution must serve."""
        mask = ~self.is_station
        mask[0] = False
        return np.flatnonzero(mask).astype(np.int64)

    @property
    def stations(self) -> I64:
        """Indices of the charging stations."""
        return np.flatnonzero(self.is_station).astype(np.int64)

    @property
    def has_ev(self) -> bool:
        """Whether some vehicle type has a finite battery."""
        return bool(np.isfinite(self.veh_battery).any())

    @property
    def is_simple(self) -> bool:
        """Plain VRPTW (no pickups, no batteries): the planner's fast path applies."""
        return not self.has_ev and not (self.pickup > 0).any()


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanParams:
    """Route-planner parameters.

    Attributes:
        time_limit: wall-clock seconds for the search (the kernel's first compilation excluded).
        seed: random seed.
        max_iterations: stop after this many iterations (deterministic with ``seed``).
        engine: ``"sisr"`` (the numba ruin-and-recreate search, default) or ``"ortools"``
            (OR-Tools routing with guided local search; no electric vehicles).
        avg_remove, max_string, blink: SISR's ruin size, string length and blink rate.
        temperature: initial and final simulated-annealing temperature (None: 100 and 1 at
            the Solomon scale, scaled by the mean depot distance / 35 and by
            sqrt(100 / customers)).
        granular: an insertion tries the routes of the customer's ``granular`` nearest
            customers first (every route when none of them fits; 0: always every route).
    """

    time_limit: float = 10.0
    seed: int = 0
    max_iterations: int | None = None
    engine: str = "sisr"
    avg_remove: float = 10.0
    max_string: int = 10
    blink: float = 0.01
    temperature: tuple[float, float] | None = None
    granular: int = 40
    workers: int = 1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.time_limit) and self.time_limit > 0):
            raise ProblemError("time_limit", "must be a finite number of seconds > 0")
        if self.max_iterations is not None and self.max_iterations < 0:
            raise ProblemError("max_iterations", "must be >= 0")
        if self.engine not in ("sisr", "ortools"):
            raise ProblemError("engine", "must be 'sisr' or 'ortools'")
        if not self.avg_remove >= 1:
            raise ProblemError("avg_remove", "must be >= 1")
        if self.max_string < 1:
            raise ProblemError("max_string", "must be >= 1")
        if not 0 <= self.blink < 1:
            raise ProblemError("blink", "must be in [0, 1)")
        if self.workers < 1:
            raise ProblemError("workers", "must be >= 1")
        if self.granular < 0:
            raise ProblemError("granular", "must be >= 0")
        if self.temperature is not None and not (0 < self.temperature[1] <= self.temperature[0]):
            raise ProblemError("temperature", "must be (initial, final) with initial >= final > 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutePlan:
    """Routes (node indices, depot excluded), their vehicle types and energy bought per stop."""

    routes: tuple[tuple[int, ...], ...]
    vehicle_types: tuple[int, ...]
    charges: tuple[tuple[float, ...], ...]
    distance: float
    unserved: tuple[int, ...] = ()
    seconds: float = 0.0
    compile_seconds: float = 0.0
    iterations: int = 0
    engine: str = "sisr"
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def vehicles(self) -> int:
        """Number of routes (vehicles used)."""
        return len(self.routes)

    def cost(self) -> float:
        """Total distance (the planner's objective, fixed vehicle costs aside)."""
        return self.distance

    def to_json(self, problem: RoutingProblem) -> dict[str, Any]:
        """The CLI's JSON shape: routes as node labels, distance, vehicles (and unserved stops)."""
        out: dict[str, Any] = {
            "routes": [[problem.labels[i] for i in r] for r in self.routes],
            "distance": round(self.distance, 6),
            "vehicles": self.vehicles,
        }
        if self.unserved:
            out["unserved"] = [problem.labels[i] for i in self.unserved]
        return out
