"""PlanRoutes collects the empty containers that container tracking knows are waiting at a site,
without the request naming them; the request's per-site count overrides (real broker, gRPC)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.settings import SiteSettings
from lockerhub.v1 import dispatch_pb2, sorting_pb2, vehicles_pb2, vehicles_pb2_grpc
from tests.hub.cabinet import FakeCabinet, inventory_entry
from tests.hub.conftest import running_hub, settings_for
from tests.hub.test_dispatch_e2e import INSURED_MS, START_MS
from tests.hub.test_flow import online
from tests.hub.test_sorting_hub import (
    BIG,
    LINE_KIND,
    STATION_KIND,
    Hub,
    _announce,
    _move,
    _plan,
    _send,
    _sorted,
)

A = sorting_pb2


@pytest.fixture
async def pickuphub(tmp_path: Path, mosquitto: Any) -> AsyncIterator[Hub]:
    """A sorting hub and two nearby sites with coordinates (the planner's stops)."""
    tag = uuid.uuid4().hex[:6]
    here, other, third = f"H{tag}", f"X{tag}", f"Y{tag}"
    settings = dataclasses.replace(
        settings_for(tmp_path, mosquitto, here),
        sites=(
            SiteSettings(id=here, lat=31.20, lon=121.40),
            SiteSettings(id=other, lat=31.23, lon=121.45, sorting_hub=here),
            SiteSettings(id=third, lat=31.18, lon=121.48, sorting_hub=here),
        ),
        devices=(
            inventory_entry(f"CA{tag}", here, layout=BIG),
            inventory_entry(f"L{tag}", here, LINE_KIND),
            inventory_entry(f"S{tag}", here, STATION_KIND),
        ),
    )
    async with running_hub(settings, tmp_path, mosquitto) as h:
        line = FakeCabinet(mosquitto, here, f"L{tag}", kind=LINE_KIND)
        station = FakeCabinet(mosquitto, here, f"S{tag}", kind=STATION_KIND)
        cab = FakeCabinet(mosquitto, here, f"CA{tag}")
        async with line, station, cab:
            for device in (line, station):
                await device.birth(())
            await cab.birth(BIG)
            for device in (line, station, cab):
                await online(h, device.device)
            yield Hub(h, line, station, cab, other)


async def _register_van(hub: Hub) -> None:
    stub = vehicles_pb2_grpc.VehicleServiceStub(hub.h.channel)
    await stub.RegisterVehicle(
        vehicles_pb2.RegisterVehicleRequest(
            vehicle=vehicles_pb2.RegisteredVehicle(
                vehicle_id="VAN1",
                plate="PL-VAN1",
                vehicle_class=vehicles_pb2.VEHICLE_CLASS_COMBUSTION_VAN,
                depot_site=hub.h.site,
                capacity_parcels=20,
                driver=vehicles_pb2.Driver(
                    driver_id="D-VAN1", safety_trained=True, insurance_expiry_ms=INSURED_MS
                ),
            )
        )
    )


async def _cycle_to(hub: Hub, container: str, parcel: str, site: str, *, back: bool) -> None:
    """Fill at the hub's line, load, unload and empty at ``site``; ``back``: loaded again."""
    here = hub.h.site
    await _announce(hub, parcel)
    await _send(hub, hub.line, **_sorted(parcel, "CH01", 1, here))
    moved = A.CONTAINER_ACTION_FILLED
    await _send(
        hub, hub.line, container_moved=_move(container, moved, chute_id="CH01", parcel_ids=[parcel])
    )
    for move in (
        _move(container, A.CONTAINER_ACTION_LOADED, vehicle_id="V9", site=here),
        _move(container, A.CONTAINER_ACTION_UNLOADED, vehicle_id="V9", site=site),
        _move(container, A.CONTAINER_ACTION_EMPTIED, site=site),
        *([_move(container, A.CONTAINER_ACTION_LOADED, vehicle_id="V9", site=site)] * back),
    ):
        await hub.sorting.RecordContainer(A.RecordContainerRequest(move=move))


def _containers(reply: dispatch_pb2.PlanRoutesResponse) -> dict[str, tuple[int, int]]:
    """site -> (container_count, pickup_count) over every stop that collects something."""
    return {
        s.site: (s.container_count, s.pickup_count)
        for r in reply.routes
        for s in r.stops
        if s.pickup_count
    }


async def test_emptied_containers_become_pickups_without_the_request(pickuphub: Hub) -> None:
    hub, here, other = pickuphub, pickuphub.h.site, pickuphub.other
    third = f"Y{other[1:]}"
    await _plan(hub, **{here: "CH01"})
    await _register_van(hub)
    await _cycle_to(hub, "BAG-1", "P-1", other, back=False)
    await _cycle_to(hub, "BAG-2", "P-2", other, back=False)
    # Emptied at the third site but already loaded again: on its way back, nothing to collect.
    await _cycle_to(hub, "BAG-3", "P-3", third, back=True)

    def plan(**kw: Any) -> Any:
        req = dispatch_pb2.PlanRoutesRequest(hub_site=here, start_ms=START_MS, time_limit_s=1, **kw)
        return hub.h.dispatch.PlanRoutes(req, timeout=120)

    reply = await plan()
    assert not reply.unserved_stops, reply.unserved_stops
    assert _containers(reply) == {other: (2, 2)}
    # The request's count for a site wins over the tracked one (0 too); other sites keep theirs.
    reply = await plan(empty_containers=[dispatch_pb2.SiteCount(site=third, count=3)])
    assert _containers(reply) == {other: (2, 2), third: (3, 3)}
    reply = await plan(empty_containers=[dispatch_pb2.SiteCount(site=other, count=0)])
    assert _containers(reply) == {}
    # Once loaded again, the containers are no longer waiting at the site.
    for bag in ("BAG-1", "BAG-2"):
        move = _move(bag, A.CONTAINER_ACTION_LOADED, vehicle_id="V9", site=other)
        await hub.sorting.RecordContainer(A.RecordContainerRequest(move=move))
    assert _containers(await plan()) == {}
