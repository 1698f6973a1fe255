"""The slot allocator's rules, one at a time: fit in any orientation, temperature zone, weight,
radius, free; the objective; the independent check; and every validation of the problem data.

For each placement rule, the problem's own ``fits``/``check`` and all three engines (the numba
kernel, its plain-Python reference and the exact OR-Tools baseline) must agree: placed on the
boundary, unplaced one step past it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from routing import AllocationParams, AllocationProblem, AllocationResult, ProblemError, allocate
from routing.geo import haversine_m

ENGINES = [AllocationParams(engine=e) for e in ("numba", "python", "exact")]
LAT0, LON0 = 52.0, 13.0
LAT1 = 52.01  # site "b", about 1.1 km north of "a"


def problem_json(**parcel: Any) -> dict[str, Any]:
    """One parcel for site "a"; compartment "c0" (300x200x100 mm, 10 kg, ambient) at "a"."""
    p = {"id": "p0", "w": 300.0, "h": 200.0, "d": 100.0, "kg": 10.0, "zone": "ambient", "site": "a"}
    p.update(parcel)
    return {
        "radius_m": 0.0,
        "sites": [{"id": "a", "lat": LAT0, "lon": LON0}, {"id": "b", "lat": LAT1, "lon": LON0}],
        "compartments": [
            {
                "id": "c0",
                "site": "a",
                "w": 300.0,
                "h": 200.0,
                "d": 100.0,
                "max_kg": 10.0,
                "zone": "ambient",
                "free": True,
                "last_used": 0.0,
            }
        ],
        "parcels": [p],
    }


def build(changes: dict[str, Any] | None = None, **parcel: Any) -> AllocationProblem:
    data = problem_json(**parcel)
    for key, value in (changes or {}).items():
        if key == "radius_m":
            data["radius_m"] = value
        else:
            data["compartments"][0][key] = value
    return AllocationProblem.from_json(data)


B_DIST = float(haversine_m(LAT0, LON0, LAT1, LON0))  # type: ignore[arg-type]

PLACED = [
    ("exact-size", {}, {}),
    ("rotated-xyz-to-zyx", {}, {"w": 100.0, "h": 200.0, "d": 300.0}),
    ("rotated-yzx", {}, {"w": 200.0, "h": 100.0, "d": 300.0}),
    ("smaller", {}, {"w": 10.0, "h": 10.0, "d": 10.0, "kg": 0.0}),
    ("chilled-in-chilled", {"zone": "chilled"}, {"zone": "chilled"}),
    ("inside-radius", {"site": "b"}, {"site": "a", "radius_m": None}),
    ("within-radius-other-way", {"site": "a"}, {"site": "b", "radius_m": None}),
]
UNPLACED = [
    ("one-mm-too-wide", {}, {"w": 301.0}),
    ("too-tall-in-every-orientation", {}, {"w": 100.0, "h": 100.0, "d": 301.0}),
    ("middle-dimension", {}, {"w": 100.0, "h": 201.0, "d": 201.0}),
    ("smallest-dimension", {}, {"w": 101.0, "h": 250.0, "d": 150.0}),
    ("too-heavy", {}, {"kg": 10.001}),
    ("chilled-parcel-ambient-slot", {}, {"zone": "chilled"}),
    ("ambient-parcel-chilled-slot", {"zone": "chilled"}, {}),
    ("not-free", {"free": False}, {}),
    ("outside-radius", {"site": "b"}, {"radius_m": "short"}),
]


def _case(changes: dict[str, Any], parcel: dict[str, Any]) -> AllocationProblem:
    parcel = dict(parcel)
    radius = parcel.pop("radius_m", 0.0)
    changes = dict(changes)
    if radius is None:
        changes["radius_m"] = B_DIST + 1.0
    elif radius == "short":
        changes["radius_m"] = B_DIST - 1.0
    return build(changes, **parcel)


@pytest.mark.parametrize(("name", "changes", "parcel"), PLACED)
def test_placed_on_the_boundary_by_every_engine(
    name: str, changes: dict[str, Any], parcel: dict[str, Any]
) -> None:
    pb = _case(changes, parcel)
    assert pb.fits(0, 0)
    assert pb.check(np.array([0])) == []
    for params in ENGINES:
        result = allocate(pb, params=params)
        assert result.assignments.tolist() == [0], params.engine
        assert (result.placed, result.unplaced) == (1, 0)


@pytest.mark.parametrize(("name", "changes", "parcel"), UNPLACED)
def test_each_rule_keeps_a_parcel_out(
    name: str, changes: dict[str, Any], parcel: dict[str, Any]
) -> None:
    pb = _case(changes, parcel)
    assert not pb.fits(0, 0)
    assert pb.check(np.array([0])) == ["parcel p0 may not go into c0"]
    assert pb.check(np.array([-1])) == []
    for params in ENGINES:
        result = allocate(pb, params=params)
        assert result.assignments.tolist() == [-1], params.engine
        assert (result.placed, result.unplaced) == (0, 1)
        assert result.cost == 10_000.0


def test_radius_boundary_is_inclusive() -> None:
    on = build({"radius_m": B_DIST}, site="b")
    assert on.distance_m(0, 0) == B_DIST
    assert on.fits(0, 0)
    just_out = build({"radius_m": math.nextafter(B_DIST, 0.0)}, site="b")
    assert not just_out.fits(0, 0)


def test_distance_is_zero_on_the_same_site_and_haversine_otherwise() -> None:
    pb = build({"radius_m": 5000.0}, site="b")
    assert pb.distance_m(0, 0) == pytest.approx(1111.95, abs=0.01)
    same = build(site="a")
    assert same.distance_m(0, 0) == 0.0


def test_cost_of_the_objective() -> None:
    # 300x200x100 mm = 6 L compartment, 100x100x100 mm = 1 L parcel: 5 L of waste ...
    pb = build({"radius_m": 5000.0}, w=100.0, h=100.0, d=100.0)
    assert pb.cost(np.array([0])) == 5.0  # exact: 6e6 and 1e6 mm^3 over 1e6
    assert pb.cost(np.array([-1])) == 10_000.0
    # ... plus 50 L per km between the parcel's destination and the compartment's site.
    far = build({"radius_m": 5000.0}, w=100.0, h=100.0, d=100.0, site="b")
    assert far.cost(np.array([0])) == pytest.approx(5.0 + 50.0 * B_DIST / 1000.0)
    result = allocate(far)
    assert result.cost == pytest.approx(5.0 + 50.0 * B_DIST / 1000.0)


def _two_by_two() -> AllocationProblem:
    data = problem_json()
    data["compartments"].append(dict(data["compartments"][0], id="c1", max_kg=1.0))
    data["parcels"].append(dict(data["parcels"][0], id="p1", kg=0.5))
    return AllocationProblem.from_json(data)


def test_check_reports_each_violation() -> None:
    pb = _two_by_two()
    assert pb.n_parcels == 2
    assert pb.n_compartments == 2
    assert pb.check(np.array([0, 1])) == []
    assert pb.check(np.array([-1, -1])) == []
    assert pb.check(np.array([0, 0])) == ["compartment c0 holds several parcels"]
    assert pb.check(np.array([1, 0])) == ["parcel p0 may not go into c1"]
    assert pb.check(np.array([0, 2])) == ["compartment index out of range"]
    assert pb.check(np.array([0])) == ["assignments has shape (1,), expected (2,)"]
    assert pb.check(np.array([[0, 1]])) == ["assignments has shape (1, 2), expected (2,)"]


def test_every_engine_agrees_on_a_mixed_problem() -> None:
    pb = _two_by_two()
    for params in ENGINES:
        assert allocate(pb, params=params).assignments.tolist() == [0, 1], params.engine


def test_to_json_round_trips() -> None:
    data = problem_json()
    data["compartments"][0]["last_used"] = 4.0
    data["compartments"][0]["free"] = False
    pb = AllocationProblem.from_json(data)
    assert pb.to_json() == data
    assert AllocationProblem.from_json(pb.to_json()).to_json() == data
    without = problem_json()
    del without["compartments"][0]["last_used"]
    del without["compartments"][0]["free"]
    defaults = AllocationProblem.from_json(without).to_json()["compartments"][0]
    assert (defaults["last_used"], defaults["free"]) == (0.0, True)


def test_result_to_json() -> None:
    pb = _two_by_two()
    result = AllocationResult(
        assignments=np.array([1, -1]), cost=12.3456789, placed=1, unplaced=1, seconds=0.1234567
    )
    assert result.to_json(pb) == {
        "assignments": [{"parcel": "p0", "compartment": "c1"}],
        "unplaced": ["p1"],
        "cost": 12.345679,
        "seconds": 0.123457,
    }
    first = AllocationResult(
        assignments=np.array([0, -1]), cost=1.0, placed=1, unplaced=1, seconds=0.0
    ).to_json(pb)
    assert first["assignments"] == [{"parcel": "p0", "compartment": "c0"}]
    assert first["unplaced"] == ["p1"]
    assert result.compile_seconds == 0.0
    assert dict(result.stats) == {}


@pytest.mark.parametrize("engine", ["numba", "python", "exact"])
def test_engines(engine: str) -> None:
    assert AllocationParams(engine=engine).engine == engine
    assert AllocationParams().engine == "numba"


def test_unknown_engine() -> None:
    with pytest.raises(ProblemError) as err:
        AllocationParams(engine="gurobi")
    assert err.value.field == "engine"


def _set(path: str, value: Any) -> Any:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = data
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        key: Any = int(last) if last.isdigit() else last
        if value is _DELETE:
            del target[key]
        else:
            target[key] = value

    return change


_DELETE = object()

JSON_ERRORS = [
    ("radius_m", _DELETE, "radius_m", "missing"),
    ("radius_m", "far", "radius_m", "must be a finite number"),
    ("radius_m", True, "radius_m", "must be a finite number"),
    ("radius_m", math.inf, "radius_m", "must be a finite number"),
    ("radius_m", -1.0, "radius_m", "must be a finite number >= 0"),
    ("sites", _DELETE, "sites", "missing"),
    ("sites", {"id": "a"}, "sites", "must be a list"),
    ("sites.0", "a", "sites[0]", "must be an object"),
    ("sites.1.id", "a", "sites.id", "ids must be unique"),
    ("sites.0.id", "", "sites[0].id", "must be a non-empty string"),
    ("sites.0.id", 7, "sites[0].id", "must be a non-empty string"),
    ("sites.0.id", _DELETE, "sites[0].id", "missing"),
    ("sites.0.lat", _DELETE, "sites[0].lat", "missing"),
    ("sites.0.lat", 90.001, "sites[0].lat", "within [-90, 90]"),
    ("sites.0.lat", -90.001, "sites[0].lat", "within [-90, 90]"),
    ("sites.1.lon", 180.001, "sites[1].lon", "within [-180, 180]"),
    ("sites.1.lon", -180.001, "sites[1].lon", "within [-180, 180]"),
    ("compartments.0.site", "nowhere", "compartments[0].site", "unknown site 'nowhere'"),
    ("compartments.0.zone", "frozen", "compartments[0].zone", "must be one of"),
    ("compartments.0.free", 1, "compartments[0].free", "must be true or false"),
    ("compartments.0.w", "big", "compartments[0].w", "must be a finite number"),
    ("compartments.0.h", 0.0, "compartments[0].w/h/d", "finite and > 0"),
    ("compartments.0.d", -1.0, "compartments[0].w/h/d", "finite and > 0"),
    ("compartments.0.max_kg", -0.5, "compartments[0].max_kg", "must be a finite number >= 0"),
    ("compartments.0.last_used", "x", "compartments[0].last_used", "must be a finite number"),
    ("compartments.0.id", "", "compartments[0].id", "must be a non-empty string"),
    ("parcels", _DELETE, "parcels", "missing"),
    ("parcels.0.kg", -0.001, "parcels[0].kg", "must be a finite number >= 0"),
    ("parcels.0.w", 0.0, "parcels[0].w/h/d", "finite and > 0"),
    ("parcels.0.zone", "warm", "parcels[0].zone", "must be one of"),
    ("parcels.0.site", "c", "parcels[0].site", "unknown site 'c'"),
    ("parcels.0.id", _DELETE, "parcels[0].id", "missing"),
]


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [pytest.param(*row, id=f"{row[0]}={row[1]!r}"[:60]) for row in JSON_ERRORS],
)
def test_json_errors_name_the_field(path: str, value: Any, field: str, message: str) -> None:
    data = problem_json()
    _set(path, value)(data)
    with pytest.raises(ProblemError) as err:
        AllocationProblem.from_json(data)
    assert err.value.field == field
    assert message in err.value.message


def test_json_must_be_an_object() -> None:
    with pytest.raises(ProblemError) as err:
        AllocationProblem.from_json([])  # type: ignore[arg-type]
    assert err.value.field == "$"


def test_json_boundaries_are_accepted() -> None:
    data = problem_json()
    data["sites"][0].update(lat=90.0, lon=180.0)
    data["sites"][1].update(lat=-90.0, lon=-180.0)
    data["parcels"][0].update(kg=0)
    data["compartments"][0].update(max_kg=0.0, w=1e-9)
    assert AllocationProblem.from_json(data).radius_m == 0.0


def _arrays(**changes: Any) -> AllocationProblem:
    fields: dict[str, Any] = {
        "radius_m": 10.0,
        "site_ids": ("a", "b"),
        "site_lat": [LAT0, LAT1],
        "site_lon": [LON0, LON0],
        "comp_ids": ("c0", "c1"),
        "comp_site": [0, 1],
        "comp_dims": [[1.0, 1.0, 1.0]] * 2,
        "comp_max_kg": [0.0, 1.0],
        "comp_zone": [0, 1],
        "comp_free": [True, False],
        "comp_last_used": [0.0, 0.0],
        "parcel_ids": ("p0",),
        "parcel_dims": [[1.0, 1.0, 1.0]],
        "parcel_kg": [0.0],
        "parcel_zone": [1],
        "parcel_site": [1],
    }
    fields.update(changes)
    return AllocationProblem(**fields)


ARRAY_ERRORS = [
    ({"radius_m": -0.001}, "radius_m"),
    ({"radius_m": math.nan}, "radius_m"),
    ({"radius_m": math.inf}, "radius_m"),
    ({"site_lat": [LAT0]}, "sites.lat"),
    ({"site_lon": [LON0]}, "sites.lon"),
    ({"comp_site": [0]}, "compartments.site"),
    ({"comp_dims": [[1.0, 1.0]] * 2}, "compartments.w/h/d"),
    ({"comp_max_kg": [1.0]}, "compartments.max_kg"),
    ({"comp_zone": [0]}, "compartments.zone"),
    ({"comp_free": [True]}, "compartments.free"),
    ({"comp_last_used": [0.0]}, "compartments.last_used"),
    ({"parcel_dims": [[1.0, 1.0, 1.0]] * 2}, "parcels.w/h/d"),
    ({"parcel_kg": [0.0, 0.0]}, "parcels.kg"),
    ({"parcel_zone": []}, "parcels.zone"),
    ({"parcel_site": [0, 0]}, "parcels.site"),
    ({"comp_site": [0, 2]}, "compartments[1].site"),
    ({"comp_site": [-1, 0]}, "compartments[0].site"),
    ({"parcel_site": [2]}, "parcels[0].site"),
    ({"parcel_site": [-1]}, "parcels[0].site"),
    ({"comp_dims": [[1.0, 1.0, 1.0], [1.0, 0.0, 1.0]]}, "compartments[1].w/h/d"),
    ({"comp_dims": [[1.0, 1.0, math.inf], [1.0, 1.0, 1.0]]}, "compartments[0].w/h/d"),
    ({"parcel_dims": [[1.0, math.nan, 1.0]]}, "parcels[0].w/h/d"),
    ({"parcel_dims": [[-1.0, 1.0, 1.0]]}, "parcels[0].w/h/d"),
    ({"comp_max_kg": [0.0, -1.0]}, "compartments[1].max_kg"),
    ({"comp_max_kg": [math.inf, 0.0]}, "compartments[0].max_kg"),
    ({"parcel_kg": [-0.5]}, "parcels[0].kg"),
    ({"parcel_kg": [math.nan]}, "parcels[0].kg"),
    ({"comp_zone": [0, 2]}, "compartments[1].zone"),
    ({"comp_zone": [-1, 0]}, "compartments[0].zone"),
    ({"parcel_zone": [2]}, "parcels[0].zone"),
    ({"site_ids": ("a", "a")}, "sites.id"),
    ({"comp_ids": ("c", "c")}, "compartments.id"),
    (
        {
            "parcel_ids": ("p", "p"),
            "parcel_dims": [[1.0] * 3] * 2,
            "parcel_kg": [0.0, 0.0],
            "parcel_zone": [0, 0],
            "parcel_site": [0, 0],
        },
        "parcels.id",
    ),
]


@pytest.mark.parametrize(("changes", "field"), ARRAY_ERRORS)
def test_array_validation_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ProblemError) as err:
        _arrays(**changes)
    assert err.value.field == field


def test_arrays_are_frozen_with_fixed_dtypes() -> None:
    pb = _arrays()
    assert pb.radius_m == 10.0
    assert pb.comp_zone.dtype == np.int8
    assert pb.comp_site.dtype == np.int64
    assert pb.comp_free.dtype == np.bool_
    assert pb.comp_dims.dtype == np.float64
    assert pb.parcel_zone.dtype == np.int8
    assert pb.parcel_site.dtype == np.int64
    for arr in (pb.site_lat, pb.comp_dims, pb.parcel_kg, pb.comp_free):
        assert not arr.flags.writeable
    assert pb.fits(0, 1) is False  # c1 is not free
    assert pb.fits(0, 0) is False  # zone 1 parcel, zone 0 compartment
