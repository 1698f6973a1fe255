"""PlanRoutes: sorted parcels -> the route planner in a worker process -> routes + sort plan."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest

from hub.settings import SiteSettings
from lockerhub.v1 import common_pb2, device_pb2, dispatch_pb2
from tests.hub.cabinet import LAYOUT, FakeCabinet, inventory_entry
from tests.hub.conftest import eventually, running_hub, settings_for
from tests.hub.test_flow import announcement, online, parcel_state


async def test_plan_routes_for_sorted_parcels(tmp_path: Path, mosquitto: Any) -> None:
    tag = uuid.uuid4().hex[:6]
    hub_site, a, b = f"H{tag}", f"A{tag}", f"B{tag}"
    sites = (
        SiteSettings(id=hub_site, lat=31.20, lon=121.40),
        SiteSettings(id=a, lat=31.23, lon=121.45, sorting_hub=hub_site),
        SiteSettings(id=b, lat=31.18, lon=121.48, sorting_hub=hub_site),
    )
    line_kind = device_pb2.DEVICE_KIND_SORTING_LINE
    devices = (
        inventory_entry(f"CA{tag}", a),
        inventory_entry(f"CB{tag}", b),
        inventory_entry(f"SL{tag}", hub_site, line_kind),
    )
    settings = dataclasses.replace(
        settings_for(tmp_path, mosquitto, hub_site), sites=sites, devices=devices
    )
    async with running_hub(settings, tmp_path, mosquitto) as hub:  # noqa: SIM117 - hub first
        async with (
            FakeCabinet(mosquitto, a, f"CA{tag}") as ca,
            FakeCabinet(mosquitto, b, f"CB{tag}") as cb,
            FakeCabinet(mosquitto, hub_site, f"SL{tag}", kind=line_kind) as line,
        ):
            for cab in (ca, cb, line):
                await cab.birth(() if cab is line else LAYOUT)
                await online(hub, cab.device)
            parcels = [announcement("PA1", a), announcement("PA2", a), announcement("PB1", b)]
            resp = await hub.dispatch.AnnounceParcels(
                dispatch_pb2.AnnounceParcelsRequest(parcels=parcels)
            )
            assert all(o.accepted for o in resp.outcomes)
            for p in parcels:
                await line.event(
                    parcel_sorted=device_pb2.ParcelSorted(
                        parcel_id=p.parcel_id, destination=p.destination_site, chute_id="X1"
                    )
                )
            for p in parcels:

                async def sorted_(pid: str = p.parcel_id) -> bool:
                    return await parcel_state(hub, pid) == common_pb2.PARCEL_STATE_SORTED

                await eventually(sorted_)

            plan = await hub.dispatch.PlanRoutes(
                dispatch_pb2.PlanRoutesRequest(
                    hub_site=hub_site,
                    vehicles=[
                        dispatch_pb2.Vehicle(vehicle_id="V1", capacity_parcels=10),
                        dispatch_pb2.Vehicle(vehicle_id="V2", capacity_parcels=10),
                    ],
                    time_limit_s=1,
                ),
                timeout=120,
            )
            delivered = {
                pid: stop.site
                for route in plan.routes
                for stop in route.stops
                for pid in stop.deliver_parcel_ids
            }
            assert delivered == {"PA1": a, "PA2": a, "PB1": b}
            assert not plan.unrouted_parcel_ids
            assert plan.total_distance_km > 0
            chutes = {s.destination: s.chute_id for s in plan.sort_plan}
            assert set(chutes) == {a, b}
            for route in plan.routes:  # one chute per vehicle
                assert len({chutes[s.site] for s in route.stops}) == 1

            # No vehicles in the request: the registered ones (none here), so nothing is served.
            empty = await hub.dispatch.PlanRoutes(
                dispatch_pb2.PlanRoutesRequest(hub_site=hub_site, time_limit_s=1), timeout=120
            )
            assert not empty.routes
            assert {u.site: u.reason for u in empty.unserved_stops} == {
                a: "no vehicle available",
                b: "no vehicle available",
            }
            assert sorted(empty.unrouted_parcel_ids) == ["PA1", "PA2", "PB1"]
            for request, code in (
                (
                    dispatch_pb2.PlanRoutesRequest(
                        hub_site="nowhere",
                        vehicles=[dispatch_pb2.Vehicle(vehicle_id="V", capacity_parcels=1)],
                    ),
                    "nowhere",
                ),
                (
                    dispatch_pb2.PlanRoutesRequest(
                        hub_site=hub_site,
                        vehicles=[
                            dispatch_pb2.Vehicle(
                                vehicle_id="V", capacity_parcels=1, battery_kwh=float("nan")
                            )
                        ],
                    ),
                    "battery_kwh",
                ),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await hub.dispatch.PlanRoutes(request)
                assert code in (err.value.details() or "")
