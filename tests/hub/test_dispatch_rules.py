"""PlanRoutes under the rules, one rule at a time, and its bad input: permits, zone windows that
leave no time, capacity, unusable vehicles, hostile requests."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from lockerhub.v1 import dispatch_pb2, vehicles_pb2
from tests.hub.test_dispatch_e2e import (
    MIDNIGHT_MS,
    START_MS,
    VAN_OPENS_MIN,
    World,
    check_windows,
    minute,
    register,
    sort_parcels,
    vehicle,
    world,
)
from tests.hub.test_flow import announcement

__all__ = ["world"]  # the fixture, shared with the end-to-end test

VAN = vehicles_pb2.VEHICLE_CLASS_ELECTRIC_VAN
BIKE = vehicles_pb2.VEHICLE_CLASS_E_BIKE


def big_van(w: World, vid: str, **kw: object) -> vehicles_pb2.RegisteredVehicle:
    fields: dict[str, object] = {
        "capacity_parcels": 100,
        "battery_kwh": 60.0,
        "consumption_kwh_per_km": 0.2,
    }
    fields.update(kw)
    return vehicle(w.sites["H"], vid, VAN, **fields)


async def plan(w: World, **kw: object) -> dispatch_pb2.PlanRoutesResponse:
    fields: dict[str, object] = {"hub_site": w.sites["H"], "start_ms": START_MS, "time_limit_s": 1}
    fields.update(kw)
    return await w.hub.dispatch.PlanRoutes(
        dispatch_pb2.PlanRoutesRequest(**fields),  # type: ignore[arg-type]
        timeout=240,
    )


async def test_a_van_enters_the_zone_only_when_it_opens_to_vans(world: World) -> None:
    w = world
    await register(w.hub, big_van(w, "V1"))
    parcels = [announcement(f"Z{i}{w.tag}", w.sites["A"]) for i in range(2)]
    await sort_parcels(w, parcels)
    reply = await plan(w)
    (route,) = reply.routes
    (stop,) = route.stops
    assert stop.site == w.sites["A"]
    assert stop.zone == "old-town"
    # It left at 07:00 and would be there in minutes, but waits until 11:00.
    assert minute(route.start_ms) == 7 * 60
    assert minute(stop.arrival_ms) >= VAN_OPENS_MIN
    check_windows(w, reply, {"V1": VAN})


async def test_a_vehicle_without_the_permit_leaves_the_zone_unserved(world: World) -> None:
    w = world
    await register(w.hub, big_van(w, "V1", permit_zones=[]))
    await sort_parcels(
        w, [announcement(f"Z1{w.tag}", w.sites["A"]), announcement(f"B1{w.tag}", w.sites["B"])]
    )
    reply = await plan(w)
    assert [s.site for r in reply.routes for s in r.stops] == [w.sites["B"]]
    (left,) = reply.unserved_stops
    assert left.site == w.sites["A"]
    assert "permit" in left.reason
    assert "old-town" in left.reason
    assert list(left.parcel_ids) == [f"Z1{w.tag}"]
    assert list(reply.unrouted_parcel_ids) == [f"Z1{w.tag}"]


async def test_windows_that_leave_no_time_are_named(world: World) -> None:
    w = world
    await register(w.hub, big_van(w, "V1"))
    await sort_parcels(
        w, [announcement(f"Z1{w.tag}", w.sites["A"]), announcement(f"C1{w.tag}", w.sites["C"])]
    )
    late = MIDNIGHT_MS + int(dt.timedelta(hours=20, minutes=30).total_seconds() * 1000)
    reply = await plan(w, start_ms=late)
    assert not reply.routes
    reasons = {u.site: u.reason for u in reply.unserved_stops}
    assert set(reasons) == {w.sites["A"], w.sites["C"]}
    assert "zone old-town's window 11:00-20:00 for electric_van" in reasons[w.sites["A"]]
    assert "site hours 07:00-20:00" in reasons[w.sites["C"]]


async def test_what_no_vehicle_can_carry_is_listed_with_the_reason(world: World) -> None:
    w = world
    await register(
        w.hub,
        vehicle(
            w.sites["H"],
            "EB1",
            BIKE,
            capacity_parcels=1,
            battery_kwh=1.0,
            consumption_kwh_per_km=0.02,
        ),
    )
    await sort_parcels(w, [announcement(f"A{i}{w.tag}", w.sites["A"]) for i in range(2)])
    reply = await plan(w)
    assert not reply.routes
    (left,) = reply.unserved_stops
    assert "no e_bike route could take it" in left.reason
    assert len(left.parcel_ids) == 2


async def test_unusable_vehicles_are_skipped_with_their_reason(world: World) -> None:
    w = world
    expired = int(dt.datetime(2030, 6, 1, tzinfo=dt.UTC).timestamp() * 1000)
    await register(
        w.hub,
        big_van(
            w,
            "OLD",
            plate="PL-OLD",
            driver=vehicles_pb2.Driver(
                driver_id="D1", safety_trained=True, insurance_expiry_ms=expired
            ),
        ),
        big_van(w, "NEW", plate="PL-NEW", driver=vehicles_pb2.Driver(driver_id="D2")),
        big_van(w, "NOBODY", plate="PL-NOBODY", driver=vehicles_pb2.Driver()),
    )
    await sort_parcels(w, [announcement(f"B1{w.tag}", w.sites["B"])])
    reply = await plan(w)
    assert not reply.routes
    assert {v.vehicle_id: v.reason for v in reply.skipped_vehicles} == {
        "OLD": "insurance expired",
        "NEW": "driver has no safety training",
        "NOBODY": "no driver assigned",
    }
    assert [u.reason for u in reply.unserved_stops] == ["no vehicle available"]


async def test_hostile_plan_requests_are_refused(world: World) -> None:
    w = world
    hub_site = w.sites["H"]
    cases: list[tuple[dispatch_pb2.PlanRoutesRequest, grpc.StatusCode, str]] = [
        (
            dispatch_pb2.PlanRoutesRequest(hub_site=hub_site, start_ms=5),
            grpc.StatusCode.INVALID_ARGUMENT,
            "start_ms",
        ),
        (
            dispatch_pb2.PlanRoutesRequest(hub_site=hub_site, start_ms=-1),
            grpc.StatusCode.INVALID_ARGUMENT,
            "start_ms",
        ),
        (
            dispatch_pb2.PlanRoutesRequest(hub_site=hub_site, time_limit_s=10_000),
            grpc.StatusCode.INVALID_ARGUMENT,
            "time_limit_s",
        ),
        (
            dispatch_pb2.PlanRoutesRequest(
                hub_site=hub_site,
                empty_containers=[dispatch_pb2.SiteCount(site="a/#", count=1)],
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "empty_containers[0].site",
        ),
        (
            dispatch_pb2.PlanRoutesRequest(
                hub_site=hub_site,
                empty_containers=[dispatch_pb2.SiteCount(site="s", count=1)] * 2,
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "duplicate",
        ),
        (
            dispatch_pb2.PlanRoutesRequest(
                hub_site=hub_site,
                empty_containers=[dispatch_pb2.SiteCount(site="s", count=4_000_000_000)],
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "count",
        ),
        (
            dispatch_pb2.PlanRoutesRequest(
                hub_site=hub_site,
                empty_containers=[dispatch_pb2.SiteCount(site=f"s{i}") for i in range(10_001)],
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "at most",
        ),
        (
            dispatch_pb2.PlanRoutesRequest(hub_site=hub_site, exclude_vehicle_ids=["x"] * 501),
            grpc.StatusCode.INVALID_ARGUMENT,
            "exclude_vehicle_ids",
        ),
        (dispatch_pb2.PlanRoutesRequest(hub_site="nowhere"), grpc.StatusCode.NOT_FOUND, "nowhere"),
        (
            dispatch_pb2.PlanRoutesRequest(hub_site=hub_site, parcel_ids=["ghost"]),
            grpc.StatusCode.NOT_FOUND,
            "ghost",
        ),
        # An ad-hoc fleet would bypass permits on a hub with zones.
        (
            dispatch_pb2.PlanRoutesRequest(
                hub_site=hub_site,
                vehicles=[dispatch_pb2.Vehicle(vehicle_id="V", capacity_parcels=9)],
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "registered vehicles",
        ),
    ]
    for request, code, text in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await w.hub.dispatch.PlanRoutes(request, timeout=60)
        assert err.value.code() == code, (text, err.value.details())
        assert text in (err.value.details() or ""), err.value.details()
    assert await w.hub.sql("SELECT plan_id FROM route_plans") == []

    bad: list[tuple[object, grpc.StatusCode]] = [
        (dispatch_pb2.GetRoutePlanRequest(), grpc.StatusCode.NOT_FOUND),
        (dispatch_pb2.GetRoutePlanRequest(plan_id="nope"), grpc.StatusCode.NOT_FOUND),
        (dispatch_pb2.GetRoutePlanRequest(plan_id="../../x"), grpc.StatusCode.INVALID_ARGUMENT),
        (dispatch_pb2.GetRoutePlanRequest(vehicle_id="V" * 100), grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for request, code in bad:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await w.hub.dispatch.GetRoutePlan(request)
        assert err.value.code() == code
    bad_replan = dispatch_pb2.ReplanRoutesRequest
    invalid, not_found = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
    replans: list[tuple[dispatch_pb2.ReplanRoutesRequest, grpc.StatusCode]] = [
        (bad_replan(plan_id="p", exclude_vehicle_ids=["V"]), invalid),
        (bad_replan(plan_id="p", reason="r"), invalid),
        (bad_replan(plan_id="p", reason="r", exclude_vehicle_ids=["a b"]), invalid),
        (bad_replan(plan_id="p", reason="r", exclude_vehicle_ids=["V"]), not_found),
    ]
    for replan, code in replans:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await w.hub.dispatch.ReplanRoutes(replan)
        assert err.value.code() == code
