"""The hub's own check of a plan (permits, hours, zone windows), on plans made by hand."""

from __future__ import annotations

from hub.planning.dispatch import (
    DispatchInput,
    DispatchOutput,
    RouteOutput,
    StopInput,
    Visit,
    stop_window,
)
from hub.planning.plans import independent_check
from hub.vehicles import Vehicle, VehicleClass

ZONES = {"old": ((600.0, 960.0), {"e_bike": (0.0, 1440.0)})}
STOP = StopInput(site="A", lat=31.2, lon=121.4, zone="old", hours=(420.0, 1320.0), deliver=("p",))


def inp(start_min: float = 420.0) -> DispatchInput:
    return DispatchInput(
        depot=("H", 31.2, 121.4),
        depot_hours=(0.0, 1440.0),
        start_min=start_min,
        stops=(STOP,),
        piles=(),
        vehicles=(),
        zones=ZONES,
        time_limit_s=1,
    )


def van(permits: tuple[str, ...] = ("old",)) -> Vehicle:
    return Vehicle(
        vehicle_id="V",
        plate="PL-1",
        vehicle_class=VehicleClass.ELECTRIC_VAN,
        capacity_parcels=10,
        battery_kwh=10,
        consumption_kwh_per_km=0.2,
        permit_zones=permits,
        depot_site="H",
    )


def plan(arrival: float, departure: float) -> DispatchOutput:
    visit = Visit(site="A", pile_id="", arrival_min=arrival, departure_min=departure, charge_kwh=0)
    route = RouteOutput(
        vehicle_id="V", visits=(visit,), distance_km=1, energy_kwh=0.2, start_min=420,
        end_min=departure + 5,
    )  # fmt: skip
    return DispatchOutput(routes=(route,), unserved=(), subproblems=(), violations=())


def test_a_visit_inside_the_window_with_a_permit_passes() -> None:
    assert independent_check(inp(), plan(600, 603.25), {"V": van()}) == []


def test_no_permit_early_arrival_and_late_departure_are_each_found() -> None:
    assert independent_check(inp(), plan(600, 603), {"V": van(permits=())}) == [
        "V enters zone old without a permit"
    ]
    assert independent_check(inp(), plan(599, 602), {"V": van()}) == [
        "V is at A outside its window"
    ]
    assert independent_check(inp(), plan(958, 961), {"V": van()}) == [
        "V is at A outside its window"
    ]


def test_the_service_window_ends_early_enough_to_leave_in_time() -> None:
    # Service takes 3 + 0.25 minutes: a van must start by 15:56:45 to leave by 16:00.
    assert stop_window(inp(), STOP, "electric_van") == (600.0, 960.0 - 3.25)
    assert stop_window(inp(), STOP, "e_bike") == (420.0, 1320.0 - 3.25)
    late = stop_window(inp(start_min=959.0), STOP, "electric_van")
    assert isinstance(late, str)
    assert "zone old's window 10:00-16:00 for electric_van" in late
