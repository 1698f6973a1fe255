"""Slot-allocation data: the problem (parcels, compartments, sites), parameters and result."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from routing.errors import ProblemError
from routing.geo import haversine_m

__all__ = [
    "DISTANCE_COST_L_PER_KM",
    "UNPLACED_PENALTY_L",
    "ZONES",
    "AllocationParams",
    "AllocationProblem",
    "AllocationResult",
]

#: Objective weights fixed by the issue, so that every solver is scored the same way.
UNPLACED_PENALTY_L = 10_000.0
DISTANCE_COST_L_PER_KM = 50.0
#: Temperature zones, in the order of their integer codes.
ZONES: tuple[str, ...] = ("ambient", "chilled")

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
B = npt.NDArray[np.bool_]


def _frozen(a: npt.NDArray[Any], dtype: type, name: str, shape: tuple[int, ...]) -> Any:
    arr: np.ndarray[Any, Any] = np.array(a, dtype=dtype, copy=True)
    if arr.shape != shape:
        raise ProblemError(name, f"expected shape {shape}, got {arr.shape}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocationProblem:
    """Immutable allocation problem; arrays are read-only with fixed dtypes.

    Dimensions are millimetres, weights kilograms, zones integer codes into ``ZONES``;
    ``comp_site`` and ``parcel_site`` index ``site_ids``.  ``comp_free`` masks compartments that
    may be used (occupied or reserved ones are ``False``), ``comp_last_used`` (any monotone clock)
    spreads load: among equal compartments the least recently used is taken first.
    """

    radius_m: float
    site_ids: tuple[str, ...]
    site_lat: F64
    site_lon: F64
    comp_ids: tuple[str, ...]
    comp_site: I64
    comp_dims: F64
    comp_max_kg: F64
    comp_zone: I8
    comp_free: B
    comp_last_used: F64
    parcel_ids: tuple[str, ...]
    parcel_dims: F64
    parcel_kg: F64
    parcel_zone: I8
    parcel_site: I64

    def __post_init__(self) -> None:
        ns, nc, npar = len(self.site_ids), len(self.comp_ids), len(self.parcel_ids)
        if not (math.isfinite(self.radius_m) and self.radius_m >= 0):
            raise ProblemError("radius_m", "must be a finite number >= 0")
        fix = object.__setattr__
        fix(self, "site_lat", _frozen(self.site_lat, np.float64, "sites.lat", (ns,)))
        fix(self, "site_lon", _frozen(self.site_lon, np.float64, "sites.lon", (ns,)))
        fix(self, "comp_site", _frozen(self.comp_site, np.int64, "compartments.site", (nc,)))
        fix(self, "comp_dims", _frozen(self.comp_dims, np.float64, "compartments.w/h/d", (nc, 3)))
        fix(
            self, "comp_max_kg", _frozen(self.comp_max_kg, np.float64, "compartments.max_kg", (nc,))
        )
        fix(self, "comp_zone", _frozen(self.comp_zone, np.int8, "compartments.zone", (nc,)))
        fix(self, "comp_free", _frozen(self.comp_free, np.bool_, "compartments.free", (nc,)))
        fix(
            self,
            "comp_last_used",
            _frozen(self.comp_last_used, np.float64, "compartments.last_used", (nc,)),
        )
        fix(self, "parcel_dims", _frozen(self.parcel_dims, np.float64, "parcels.w/h/d", (npar, 3)))
        fix(self, "parcel_kg", _frozen(self.parcel_kg, np.float64, "parcels.kg", (npar,)))
        fix(self, "parcel_zone", _frozen(self.parcel_zone, np.int8, "parcels.zone", (npar,)))
        fix(self, "parcel_site", _frozen(self.parcel_site, np.int64, "parcels.site", (npar,)))
        for name, arr, n in (
            ("compartments", self.comp_site, ns),
            ("parcels", self.parcel_site, ns),
        ):
            bad = np.flatnonzero((arr < 0) | (arr >= n))
            if bad.size:
                raise ProblemError(f"{name}[{bad[0]}].site", "unknown site")
        for name, dims in (
            ("compartments", self.comp_dims),
            ("parcels", self.parcel_dims),
        ):
            bad = np.flatnonzero(~np.isfinite(dims).all(axis=1) | (dims <= 0).any(axis=1))
            if bad.size:
                raise ProblemError(f"{name}[{bad[0]}].w/h/d", "dimensions must be finite and > 0")
        for name, arr1 in (("compartments", self.comp_max_kg), ("parcels", self.parcel_kg)):
            bad = np.flatnonzero(~np.isfinite(arr1) | (arr1 < 0))
            if bad.size:
                key = "max_kg" if name == "compartments" else "kg"
                raise ProblemError(f"{name}[{bad[0]}].{key}", "must be a finite number >= 0")
        for name, z in (("compartments", self.comp_zone), ("parcels", self.parcel_zone)):
            bad = np.flatnonzero((z < 0) | (z >= len(ZONES)))
            if bad.size:
                raise ProblemError(f"{name}[{bad[0]}].zone", f"must be one of {ZONES}")
        for name, ids in (("sites", self.site_ids), ("compartments", self.comp_ids)):
            if len(set(ids)) != len(ids):
                raise ProblemError(f"{name}.id", "ids must be unique")
        if len(set(self.parcel_ids)) != npar:
            raise ProblemError("parcels.id", "ids must be unique")

    @property
    def n_parcels(self) -> int:
        """Number of parcels in the batch."""
        return len(self.parcel_ids)

    @property
    def n_compartments(self) -> int:
        """Number of compartments (free or not)."""
        return len(self.comp_ids)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AllocationProblem:
        """Build a problem from the CLI's JSON shape (see ``docs/routing.md``).

        Raises:
            ProblemError: a key is missing or has the wrong type; ``field`` names it.
        """
        if not isinstance(data, Mapping):
            raise ProblemError("$", "the problem must be a JSON object")
        radius = _num(data, "radius_m", "radius_m")
        sites = _list(data, "sites")
        site_ids = tuple(_str(s, "id", f"sites[{i}]") for i, s in enumerate(sites))
        index = {sid: i for i, sid in enumerate(site_ids)}
        if len(index) != len(site_ids):
            raise ProblemError("sites.id", "ids must be unique")
        lat = [_num(s, "lat", f"sites[{i}]") for i, s in enumerate(sites)]
        lon = [_num(s, "lon", f"sites[{i}]") for i, s in enumerate(sites)]
        for i, (la, lo) in enumerate(zip(lat, lon, strict=True)):
            if not -90.0 <= la <= 90.0:
                raise ProblemError(f"sites[{i}].lat", "must be within [-90, 90]")
            if not -180.0 <= lo <= 180.0:
                raise ProblemError(f"sites[{i}].lon", "must be within [-180, 180]")

        def site_of(obj: Mapping[str, Any], where: str) -> int:
            sid = _str(obj, "site", where)
            if sid not in index:
                raise ProblemError(f"{where}.site", f"unknown site {sid!r}")
            return index[sid]

        def zone_of(obj: Mapping[str, Any], where: str) -> int:
            z = _str(obj, "zone", where)
            if z not in ZONES:
                raise ProblemError(f"{where}.zone", f"must be one of {list(ZONES)}, got {z!r}")
            return ZONES.index(z)

        comps = _list(data, "compartments")
        parcels = _list(data, "parcels")
        cw = [f"compartments[{i}]" for i in range(len(comps))]
        pw = [f"parcels[{i}]" for i in range(len(parcels))]
        free = []
        for c, w in zip(comps, cw, strict=True):
            v = c.get("free", True)
            if not isinstance(v, bool):
                raise ProblemError(f"{w}.free", "must be true or false")
            free.append(v)
        return cls(
            radius_m=radius,
            site_ids=site_ids,
            site_lat=np.array(lat, np.float64),
            site_lon=np.array(lon, np.float64),
            comp_ids=tuple(_str(c, "id", w) for c, w in zip(comps, cw, strict=True)),
            comp_site=np.array([site_of(c, w) for c, w in zip(comps, cw, strict=True)], np.int64),
            comp_dims=np.array(
                [[_num(c, k, w) for k in ("w", "h", "d")] for c, w in zip(comps, cw, strict=True)],
                np.float64,
            ).reshape(-1, 3),
            comp_max_kg=np.array([_num(c, "max_kg", w) for c, w in zip(comps, cw, strict=True)]),
            comp_zone=np.array([zone_of(c, w) for c, w in zip(comps, cw, strict=True)], np.int8),
            comp_free=np.array(free, np.bool_),
            comp_last_used=np.array(
                [
                    _num(c, "last_used", w) if "last_used" in c else 0.0
                    for c, w in zip(comps, cw, strict=False)
                ],
                np.float64,
            ),
            parcel_ids=tuple(_str(p, "id", w) for p, w in zip(parcels, pw, strict=True)),
            parcel_dims=np.array(
                [
                    [_num(p, k, w) for k in ("w", "h", "d")]
                    for p, w in zip(parcels, pw, strict=True)
                ],
                np.float64,
            ).reshape(-1, 3),
            parcel_kg=np.array([_num(p, "kg", w) for p, w in zip(parcels, pw, strict=True)]),
            parcel_zone=np.array(
                [zone_of(p, w) for p, w in zip(parcels, pw, strict=True)], np.int8
            ),
            parcel_site=np.array(
                [site_of(p, w) for p, w in zip(parcels, pw, strict=True)], np.int64
            ),
        )

    def to_json(self) -> dict[str, Any]:
        """The problem in the CLI's JSON shape (round-trips through ``from_json``)."""
        return {
            "radius_m": self.radius_m,
            "sites": [
                {"id": s, "lat": float(la), "lon": float(lo)}
                for s, la, lo in zip(self.site_ids, self.site_lat, self.site_lon, strict=True)
            ],
            "compartments": [
                {
                    "id": cid,
                    "site": self.site_ids[int(self.comp_site[i])],
                    "w": float(self.comp_dims[i, 0]),
                    "h": float(self.comp_dims[i, 1]),
                    "d": float(self.comp_dims[i, 2]),
                    "max_kg": float(self.comp_max_kg[i]),
                    "zone": ZONES[int(self.comp_zone[i])],
                    "free": bool(self.comp_free[i]),
                    "last_used": float(self.comp_last_used[i]),
                }
                for i, cid in enumerate(self.comp_ids)
            ],
            "parcels": [
                {
                    "id": pid,
                    "w": float(self.parcel_dims[i, 0]),
                    "h": float(self.parcel_dims[i, 1]),
                    "d": float(self.parcel_dims[i, 2]),
                    "kg": float(self.parcel_kg[i]),
                    "zone": ZONES[int(self.parcel_zone[i])],
                    "site": self.site_ids[int(self.parcel_site[i])],
                }
                for i, pid in enumerate(self.parcel_ids)
            ],
        }

    def fits(self, parcel: int, comp: int) -> bool:
        """Whether ``parcel`` may go into ``comp`` (rotation, weight, zone, radius, free)."""
        if not self.comp_free[comp] or self.parcel_zone[parcel] != self.comp_zone[comp]:
            return False
        if self.parcel_kg[parcel] > self.comp_max_kg[comp]:
            return False
        # Any of the 6 axis-aligned rotations fits iff the sorted dimensions fit pairwise.
        if (np.sort(self.parcel_dims[parcel]) > np.sort(self.comp_dims[comp])).any():
            return False
        return self.distance_m(parcel, comp) <= self.radius_m

    def distance_m(self, parcel: int, comp: int) -> float:
        """Great-circle distance from the parcel's destination to the compartment's site."""
        a, b = int(self.parcel_site[parcel]), int(self.comp_site[comp])
        if a == b:
            return 0.0
        return float(
            haversine_m(self.site_lat[a], self.site_lon[a], self.site_lat[b], self.site_lon[b])
        )

    def cost(self, assignments: npt.NDArray[np.int64]) -> float:
        """The issue's objective for ``assignments`` (parcel -> compartment index or -1).

        Sum over placed parcels of compartment litres - parcel litres + 50 * km from the
        destination, plus 10000 per unplaced parcel.
        """
        placed = assignments >= 0
        c = assignments[placed]
        vol_c = np.prod(self.comp_dims[c], axis=1) / 1e6
        vol_p = np.prod(self.parcel_dims[placed], axis=1) / 1e6
        ps, cs = self.parcel_site[placed], self.comp_site[c]
        d = haversine_m(self.site_lat[ps], self.site_lon[ps], self.site_lat[cs], self.site_lon[cs])
        d = np.where(ps == cs, 0.0, d)
        total = float(np.sum(vol_c - vol_p + DISTANCE_COST_L_PER_KM * d / 1000.0))
        return total + UNPLACED_PENALTY_L * float(np.count_nonzero(~placed))

    def check(self, assignments: npt.NDArray[np.int64]) -> list[str]:
        """Independent feasibility check; returns human-readable violations (empty when fine)."""
        errors: list[str] = []
        if assignments.shape != (self.n_parcels,):
            return [f"assignments has shape {assignments.shape}, expected ({self.n_parcels},)"]
        placed = np.flatnonzero(assignments >= 0)
        comps = assignments[placed]
        if (comps >= self.n_compartments).any():
            errors.append("compartment index out of range")
            return errors
        uniq, counts = np.unique(comps, return_counts=True)
        for c in uniq[counts > 1]:
            errors.append(f"compartment {self.comp_ids[c]} holds several parcels")
        for p, c in zip(placed.tolist(), comps.tolist(), strict=True):
            if not self.fits(p, c):
                errors.append(f"parcel {self.parcel_ids[p]} may not go into {self.comp_ids[c]}")
        return errors


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocationParams:
    """Allocator parameters.

    Attributes:
        engine: ``"numba"`` (the compiled kernel), ``"python"`` (the plain-Python reference of
            the same algorithm) or ``"exact"`` (the OR-Tools min-cost-flow baseline).
    """

    engine: str = "numba"

    def __post_init__(self) -> None:
        if self.engine not in ("numba", "python", "exact"):
            raise ProblemError("engine", "must be 'numba', 'python' or 'exact'")


@dataclass(frozen=True, slots=True, kw_only=True)
class AllocationResult:
    """Outcome of an allocation.

    Attributes:
        assignments: int64 array, parcel index -> compartment index, or -1 when unplaced.
        cost: the issue's objective (litres of waste + 50 L/km + 10000 per unplaced parcel).
        placed: number of placed parcels; ``unplaced`` the rest.
        seconds: wall time of the solve, excluding JIT compilation.
        compile_seconds: JIT compilation (or cache loading) time paid by this call, if any.
    """

    assignments: I64
    cost: float
    placed: int
    unplaced: int
    seconds: float
    compile_seconds: float = 0.0
    stats: Mapping[str, float] = field(default_factory=dict)

    def to_json(self, problem: AllocationProblem) -> dict[str, Any]:
        """The CLI's JSON output shape."""
        a = self.assignments
        return {
            "assignments": [
                {"parcel": problem.parcel_ids[p], "compartment": problem.comp_ids[int(a[p])]}
                for p in np.flatnonzero(a >= 0).tolist()
            ],
            "unplaced": [problem.parcel_ids[p] for p in np.flatnonzero(a < 0).tolist()],
            "cost": round(self.cost, 6),
            "seconds": round(self.seconds, 6),
        }


def _list(data: Mapping[str, Any], key: str) -> Sequence[Mapping[str, Any]]:
    if key not in data:
        raise ProblemError(key, "missing")
    v = data[key]
    if not isinstance(v, list):
        raise ProblemError(key, "must be a list")
    for i, item in enumerate(v):
        if not isinstance(item, Mapping):
            raise ProblemError(f"{key}[{i}]", "must be an object")
    return v


def _num(obj: Mapping[str, Any], key: str, where: str) -> float:
    name = key if where == key else f"{where}.{key}"
    if key not in obj:
        raise ProblemError(name, "missing")
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ProblemError(name, f"must be a finite number, got {v!r}")
    return float(v)


def _str(obj: Mapping[str, Any], key: str, where: str) -> str:
    if key not in obj:
        raise ProblemError(f"{where}.{key}", "missing")
    v = obj[key]
    if not isinstance(v, str) or not v:
        raise ProblemError(f"{where}.{key}", f"must be a non-empty string, got {v!r}")
    return v
