"""Readers of the standard benchmark formats: Solomon VRPTW and Schneider et al.'s E-VRPTW."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from routing.errors import ProblemError
from routing.problem import RoutingProblem

__all__ = ["euclidean", "read_evrptw", "read_solomon"]


def euclidean(xy: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances (floats, not rounded) of an (N, 2) array."""
    diff = xy[:, None, :] - xy[None, :, :]
    return np.asarray(np.sqrt((diff**2).sum(axis=2)), np.float64)


def read_solomon(path: str | Path) -> RoutingProblem:
    """Read a Solomon VRPTW instance (vehicle section, then one row per node, node 0 the depot).

    Distances are Euclidean floats, travel time equals distance, labels are customer numbers.

    Raises:
        ProblemError: the file does not follow the format (``field`` names the line).
    """
    p = Path(path)
    try:
        lines = p.read_text().splitlines()
    except OSError as exc:
        raise ProblemError(str(p), f"cannot read: {exc.strerror}") from exc
    fleet: tuple[int, float] | None = None
    rows: list[list[float]] = []
    for no, line in enumerate(lines, 1):
        parts = line.split()
        if not parts or not re.fullmatch(r"[-+0-9.eE]+", parts[0]):
            continue
        try:
            nums = [float(x) for x in parts]
        except ValueError as exc:
            raise ProblemError(f"{p.name}:{no}", f"not a number in {line.strip()!r}") from exc
        if fleet is None:
            if len(nums) != 2:
                raise ProblemError(f"{p.name}:{no}", "expected the vehicle line: NUMBER CAPACITY")
            fleet = (int(nums[0]), nums[1])
        elif len(nums) == 7:
            rows.append(nums)
        else:
            raise ProblemError(f"{p.name}:{no}", f"expected 7 columns, got {len(nums)}")
    if fleet is None or not rows:
        raise ProblemError(p.name, "no vehicle section or no customer rows")
    a = np.array(rows)
    if a[0, 0] != 0 or (a[:, 0] != np.arange(len(a))).any():
        raise ProblemError(p.name, "customer numbers must run 0 (depot), 1, 2, ...")
    n = len(a)
    d = euclidean(a[:, 1:3])
    return RoutingProblem(
        name=p.stem,
        labels=tuple(int(x) for x in a[:, 0]),
        coords=a[:, 1:3],
        dist=d,
        ttime=d,
        early=a[:, 4],
        late=a[:, 5],
        service=a[:, 6],
        delivery=a[:, 3:4],
        pickup=np.zeros((n, 1)),
        is_station=np.zeros(n, np.bool_),
        station_rate=np.zeros(n),
        veh_capacity=np.array([[fleet[1]]]),
        veh_battery=np.array([np.inf]),
        veh_consumption=np.zeros(1),
        veh_count=np.array([fleet[0]]),
        veh_fixed_cost=np.zeros(1),
    )


_FOOTER = re.compile(r"^\s*([QCrgv])\b.*?/\s*([-+0-9.eE]+)\s*/")


def read_evrptw(path: str | Path) -> RoutingProblem:
    """Read an E-VRPTW instance of Schneider, Stenger and Goeke (2014).

    Node 0 is ``D0``; stations (``S…``, type ``f``) get ``station_rate = g``; travel time is
    distance / v; the fleet is unlimited (one vehicle per customer at most).

    Raises:
        ProblemError: the file does not follow the format.
    """
    p = Path(path)
    try:
        lines = p.read_text().splitlines()
    except OSError as exc:
        raise ProblemError(str(p), f"cannot read: {exc.strerror}") from exc
    nodes: list[tuple[str, str, list[float]]] = []
    consts: dict[str, float] = {}
    for no, line in enumerate(lines, 1):
        m = _FOOTER.match(line)
        if m:
            consts[m.group(1)] = float(m.group(2))
            continue
        parts = line.split()
        if len(parts) != 8 or parts[0] == "StringID":
            continue
        if parts[1] not in ("d", "f", "c"):
            raise ProblemError(f"{p.name}:{no}", f"unknown node type {parts[1]!r}")
        try:
            nodes.append((parts[0], parts[1], [float(x) for x in parts[2:]]))
        except ValueError as exc:
            raise ProblemError(f"{p.name}:{no}", "not a number") from exc
    for key in "QCrgv":
        if key not in consts:
            raise ProblemError(f"{p.name}.{key}", "missing from the footer")
    depots = [i for i, n in enumerate(nodes) if n[1] == "d"]
    if len(depots) != 1:
        raise ProblemError(p.name, "expected exactly one depot row")
    nodes.insert(0, nodes.pop(depots[0]))
    a = np.array([n[2] for n in nodes])
    is_st = np.array([n[1] == "f" for n in nodes])
    d = euclidean(a[:, 0:2])
    n = len(nodes)
    if consts["v"] <= 0:
        raise ProblemError(f"{p.name}.v", "speed must be > 0")
    return RoutingProblem(
        name=p.stem,
        labels=tuple(nd[0] for nd in nodes),
        coords=a[:, 0:2],
        dist=d,
        ttime=d / consts["v"],
        early=a[:, 3],
        late=a[:, 4],
        service=a[:, 5],
        delivery=a[:, 2:3],
        pickup=np.zeros((n, 1)),
        is_station=is_st,
        station_rate=np.where(is_st, consts["g"], 0.0),
        veh_capacity=np.array([[consts["C"]]]),
        veh_battery=np.array([consts["Q"]]),
        veh_consumption=np.array([consts["r"]]),
        veh_count=np.array([int((~is_st).sum()) - 1]),
        veh_fixed_cost=np.zeros(1),
    )
