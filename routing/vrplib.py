"""VRPLIB readers: VRPTW instances (Gehring-Homberger in LKH-3's layout) and ``.sol`` solutions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt

from routing.errors import ProblemError
from routing.problem import RoutingProblem

__all__ = ["dimacs_distances", "read_vrplib", "read_vrplib_solution"]

_SECTIONS = ("NODE_COORD_SECTION", "DEMAND_SECTION", "TIME_WINDOW_SECTION", "SERVICE_TIME_SECTION")
_BLOCK = 256  # rows per block when building the matrix (bounds the temporaries at large n)


def dimacs_distances(xy: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Euclidean distances truncated to one decimal, ``floor(10 d) / 10`` (DIMACS convention).

    Computed in place, in row blocks, so that n = 5,000 needs the (n, n) result and one block.
    """
    a = np.asarray(xy, np.float64)
    n = a.shape[0]
    x, y = a[:, 0], a[:, 1]
    out = np.empty((n, n), np.float64)
    tmp = np.empty((min(n, _BLOCK), n), np.float64)
    for lo in range(0, n, _BLOCK):
        hi = min(n, lo + _BLOCK)
        view, t = out[lo:hi], tmp[: hi - lo]
        np.subtract(x[lo:hi, None], x[None, :], out=view)
        np.square(view, out=view)
        np.subtract(y[lo:hi, None], y[None, :], out=t)
        np.square(t, out=t)
        view += t
        np.sqrt(view, out=view)
        # Truncation as PyVRP's round_func="dimacs" does it, int(10 d): with integer
        # coordinates 10 d is an integer only when d is, and sqrt is exact on perfect squares.
        view *= 10.0
        np.floor(view, out=view)
        view /= 10.0
    out.setflags(write=False)  # frozen: RoutingProblem keeps it without a copy
    return out


def read_vrplib(path: str | Path, *, round_func: str = "dimacs") -> RoutingProblem:
    """Read a VRPLIB VRPTW instance (``NODE_COORD_SECTION``, ``DEMAND_SECTION``, ...).

    The depot becomes node 0; customers keep their file order and are labelled 1..n (the
    numbering of VRPLIB ``.sol`` files).  ``SERVICE_TIME`` applies to every customer unless a
    ``SERVICE_TIME_SECTION`` is given; ``VEHICLES`` bounds the fleet (default: one per customer).

    Args:
        path: the ``.vrp`` file.
        round_func: ``"dimacs"`` (distances and travel times truncated to one decimal) or
            ``"none"`` (float Euclidean distances).

    Raises:
        ProblemError: the file is missing or does not follow the format (``field`` names the
            file and line or the key at fault).
    """
    p = Path(path)
    if round_func not in ("dimacs", "none"):
        raise ProblemError("round_func", "must be 'dimacs' or 'none'")
    try:
        lines = p.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProblemError(str(p), f"cannot read: {getattr(exc, 'strerror', None) or exc}") from exc
    header: dict[str, str] = {}
    rows: dict[str, dict[int, list[float]]] = {s: {} for s in _SECTIONS}
    depots: list[int] = []
    section: str | None = None
    for no, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line == "EOF":
            continue
        where = f"{p.name}:{no}"
        if ":" in line and not line[0].isdigit() and not line.startswith("-"):
            key, _, value = line.partition(":")
            header[key.strip().upper()] = value.strip()
            section = None
            continue
        if line.replace(" ", "").isalpha() or line.endswith("_SECTION"):
            section = line.split()[0].upper()
            if section not in (*_SECTIONS, "DEPOT_SECTION"):
                raise ProblemError(where, f"unsupported section {section}")
            continue
        if section is None:
            raise ProblemError(where, f"data outside a section: {line[:40]!r}")
        try:
            nums = [float(x) for x in line.split()]
        except ValueError as exc:
            raise ProblemError(where, f"not a number in {line[:40]!r}") from exc
        if section == "DEPOT_SECTION":
            if nums[0] != -1:
                depots.extend(int(x) for x in nums)
            continue
        width = {"NODE_COORD_SECTION": 3, "TIME_WINDOW_SECTION": 3}.get(section, 2)
        if len(nums) != width:
            raise ProblemError(where, f"{section} expects {width} columns, got {len(nums)}")
        if not all(math.isfinite(x) for x in nums) or nums[0] != int(nums[0]):
            raise ProblemError(where, "node ids are integers and values finite")
        rows[section][int(nums[0])] = nums[1:]
    return _build(p, header, rows, depots, round_func)


def _build(
    p: Path,
    header: dict[str, str],
    rows: dict[str, dict[int, list[float]]],
    depots: list[int],
    round_func: str,
) -> RoutingProblem:
    kind = header.get("EDGE_WEIGHT_TYPE", "EUC_2D").upper()
    if kind != "EUC_2D":
        raise ProblemError(f"{p.name}.EDGE_WEIGHT_TYPE", f"only EUC_2D is supported, not {kind}")
    coords = rows["NODE_COORD_SECTION"]
    if not coords:
        raise ProblemError(f"{p.name}.NODE_COORD_SECTION", "missing or empty")
    ids = sorted(coords)
    if ids != list(range(ids[0], ids[0] + len(ids))):
        raise ProblemError(f"{p.name}.NODE_COORD_SECTION", "node ids must be consecutive")
    dim = _int(header, "DIMENSION", p, default=len(ids))
    if dim != len(ids):
        raise ProblemError(f"{p.name}.DIMENSION", f"says {dim} nodes, {len(ids)} listed")
    if len(depots) != 1 or depots[0] not in coords:
        raise ProblemError(f"{p.name}.DEPOT_SECTION", "expected exactly one listed depot node")
    order = [depots[0], *(i for i in ids if i != depots[0])]
    for sec in ("DEMAND_SECTION", "TIME_WINDOW_SECTION", "SERVICE_TIME_SECTION"):
        got = rows[sec]
        if got and sorted(got) != ids:
            missing = sorted(set(ids) - set(got))[:3]
            raise ProblemError(f"{p.name}.{sec}", f"needs one row per node (missing {missing})")
    if not rows["DEMAND_SECTION"]:
        raise ProblemError(f"{p.name}.DEMAND_SECTION", "missing")
    n = len(order)
    xy = np.array([coords[i] for i in order], np.float64)
    demand = np.array([rows["DEMAND_SECTION"][i][0] for i in order], np.float64)
    demand[0] = 0.0
    if rows["TIME_WINDOW_SECTION"]:
        tw = np.array([rows["TIME_WINDOW_SECTION"][i] for i in order], np.float64)
    else:
        tw = np.column_stack([np.zeros(n), np.full(n, np.inf)])
    if rows["SERVICE_TIME_SECTION"]:
        service = np.array([rows["SERVICE_TIME_SECTION"][i][0] for i in order], np.float64)
    else:
        service = np.full(n, _float(header, "SERVICE_TIME", p, default=0.0))
    service[0] = 0.0
    capacity = _float(header, "CAPACITY", p, default=None)
    vehicles = _int(header, "VEHICLES", p, default=max(1, n - 1))
    if vehicles < 1:
        raise ProblemError(f"{p.name}.VEHICLES", "must be >= 1")
    if round_func == "dimacs":
        dist = dimacs_distances(xy)
    else:
        dist = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
        dist.setflags(write=False)
    return RoutingProblem(
        name=header.get("NAME", p.stem),
        labels=tuple(range(n)),
        coords=xy,
        dist=dist,
        ttime=dist,  # the same matrix: RoutingProblem keeps one copy when they are identical
        early=tw[:, 0],
        late=tw[:, 1],
        service=service,
        delivery=demand[:, None],
        pickup=np.zeros((n, 1)),
        is_station=np.zeros(n, np.bool_),
        station_rate=np.zeros(n),
        veh_capacity=np.array([[capacity]]),
        veh_battery=np.array([np.inf]),
        veh_consumption=np.zeros(1),
        veh_count=np.array([vehicles]),
        veh_fixed_cost=np.zeros(1),
    )


def _float(header: dict[str, str], key: str, p: Path, *, default: float | None) -> float:
    if key not in header:
        if default is None:
            raise ProblemError(f"{p.name}.{key}", "missing")
        return default
    try:
        value = float(header[key])
    except ValueError as exc:
        raise ProblemError(f"{p.name}.{key}", f"not a number: {header[key][:40]!r}") from exc
    if not math.isfinite(value) or value < 0:
        raise ProblemError(f"{p.name}.{key}", "must be a finite number >= 0")
    return value


def _int(header: dict[str, str], key: str, p: Path, *, default: int) -> int:
    value = _float(header, key, p, default=float(default))
    if value != int(value):
        raise ProblemError(f"{p.name}.{key}", "must be an integer")
    return int(value)


def read_vrplib_solution(path: str | Path) -> tuple[list[list[int]], float | None]:
    """Read a VRPLIB ``.sol`` file: ``Route #k: c c c`` lines and an optional ``Cost X`` line.

    Returns:
        The routes (customers numbered 1..n as in the file) and the stated cost (None if absent).

    Raises:
        ProblemError: the file is missing or a line does not parse.
    """
    p = Path(path)
    try:
        lines = p.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProblemError(str(p), f"cannot read: {getattr(exc, 'strerror', None) or exc}") from exc
    routes: list[list[int]] = []
    cost: float | None = None
    for no, raw in enumerate(lines, 1):
        line = raw.strip()
        try:
            if line.lower().startswith("route"):
                routes.append([int(x) for x in line.partition(":")[2].split()])
            elif line.lower().startswith("cost"):
                cost = float(line.split()[1])
        except (ValueError, IndexError) as exc:
            raise ProblemError(f"{p.name}:{no}", f"cannot parse {line[:40]!r}") from exc
    if not routes:
        raise ProblemError(p.name, "no 'Route #k:' lines")
    return routes, cost
