"""VehicleService: register, update, retire, get and list, with malformed and hostile input."""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from hub.settings import SiteSettings, ZoneExemption, ZoneSettings
from lockerhub.v1 import vehicles_pb2, vehicles_pb2_grpc
from tests.hub.conftest import HubHarness, running_hub, settings_for

YEAR_2030_MS = 1_893_456_000_000


@pytest.fixture
async def zoned_hub(tmp_path: Path, mosquitto: Any) -> AsyncIterator[HubHarness]:
    tag = uuid.uuid4().hex[:6]
    settings = settings_for(tmp_path, mosquitto, f"H{tag}")
    settings = dataclasses.replace(
        settings,
        zones=(
            ZoneSettings(
                id="old-town",
                window="10:00-16:00",
                exemptions=(ZoneExemption(vehicle_class="electric_van", window="00:00-24:00"),),
            ),
            ZoneSettings(id="campus"),
        ),
        sites=(*settings.sites, SiteSettings(id=f"S{tag}", zone="old-town", kind="campus")),
    )
    async with running_hub(settings, tmp_path, mosquitto) as hub:
        yield hub


def stub(hub: HubHarness) -> vehicles_pb2_grpc.VehicleServiceStub:
    return vehicles_pb2_grpc.VehicleServiceStub(hub.channel)


def van(hub: HubHarness, vehicle_id: str = "VAN-1", **kw: Any) -> vehicles_pb2.RegisteredVehicle:
    fields: dict[str, Any] = {
        "vehicle_id": vehicle_id,
        "plate": f"沪A{vehicle_id[-1:] or 0}2345",
        "vehicle_class": vehicles_pb2.VEHICLE_CLASS_ELECTRIC_VAN,
        "capacity_parcels": 120,
        "battery_kwh": 40.0,
        "consumption_kwh_per_km": 0.2,
        "permit_zones": ["old-town"],
        "depot_site": hub.site,
        "driver": vehicles_pb2.Driver(
            driver_id="D-7", safety_trained=True, insurance_expiry_ms=YEAR_2030_MS
        ),
    }
    fields.update(kw)
    return vehicles_pb2.RegisteredVehicle(**fields)


async def test_register_update_retire_and_list(zoned_hub: HubHarness) -> None:
    s = stub(zoned_hub)
    v = await s.RegisterVehicle(vehicles_pb2.RegisterVehicleRequest(vehicle=van(zoned_hub)))
    assert v.registered_ms > 0
    assert not v.retired
    assert v.permit_zones == ["old-town"]
    bike = van(
        zoned_hub,
        "EB-2",
        plate="FRAME-0002",
        vehicle_class=vehicles_pb2.VEHICLE_CLASS_E_BIKE,
        capacity_parcels=20,
        battery_kwh=1.0,
        consumption_kwh_per_km=0.02,
        permit_zones=["old-town", "campus"],
    )
    await s.RegisterVehicle(vehicles_pb2.RegisterVehicleRequest(vehicle=bike))
    changed = van(zoned_hub, capacity_parcels=90, permit_zones=["campus"])
    updated = await s.UpdateVehicle(vehicles_pb2.UpdateVehicleRequest(vehicle=changed))
    assert updated.capacity_parcels == 90
    assert updated.permit_zones == ["campus"]
    assert updated.registered_ms == v.registered_ms
    listed = await s.ListVehicles(vehicles_pb2.ListVehiclesRequest())
    assert [x.vehicle_id for x in listed.vehicles] == ["EB-2", "VAN-1"]
    bikes = await s.ListVehicles(
        vehicles_pb2.ListVehiclesRequest(vehicle_class=vehicles_pb2.VEHICLE_CLASS_E_BIKE)
    )
    assert [x.vehicle_id for x in bikes.vehicles] == ["EB-2"]
    retired = await s.RetireVehicle(
        vehicles_pb2.RetireVehicleRequest(vehicle_id="VAN-1", reason="sold")
    )
    assert retired.retired
    assert retired.retired_reason == "sold"
    again = await s.RetireVehicle(
        vehicles_pb2.RetireVehicleRequest(vehicle_id="VAN-1", reason="twice")
    )
    assert again.retired_reason == "sold"  # idempotent: the first retirement stands
    active = await s.ListVehicles(vehicles_pb2.ListVehiclesRequest())
    assert [x.vehicle_id for x in active.vehicles] == ["EB-2"]
    every = await s.ListVehicles(vehicles_pb2.ListVehiclesRequest(include_retired=True))
    assert len(every.vehicles) == 2
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await s.UpdateVehicle(vehicles_pb2.UpdateVehicleRequest(vehicle=van(zoned_hub)))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    got = await s.GetVehicle(vehicles_pb2.GetVehicleRequest(vehicle_id="EB-2"))
    assert got.plate == "FRAME-0002"
    assert sorted(got.permit_zones) == ["campus", "old-town"]


async def test_conflicts_and_unknowns(zoned_hub: HubHarness) -> None:
    s = stub(zoned_hub)
    await s.RegisterVehicle(vehicles_pb2.RegisterVehicleRequest(vehicle=van(zoned_hub)))
    cases = [
        (van(zoned_hub), grpc.StatusCode.ALREADY_EXISTS),  # same id
        (van(zoned_hub, "VAN-2", plate="沪A12345"), grpc.StatusCode.ALREADY_EXISTS),  # same plate
        (van(zoned_hub, "VAN-3", permit_zones=["atlantis"]), grpc.StatusCode.INVALID_ARGUMENT),
        (van(zoned_hub, "VAN-4", depot_site="nowhere"), grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for record, code in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await s.RegisterVehicle(vehicles_pb2.RegisterVehicleRequest(vehicle=record))
        assert err.value.code() == code, record.vehicle_id
    for call, request in (
        (s.GetVehicle, vehicles_pb2.GetVehicleRequest(vehicle_id="GHOST")),
        (s.RetireVehicle, vehicles_pb2.RetireVehicleRequest(vehicle_id="GHOST", reason="x")),
        (s.UpdateVehicle, vehicles_pb2.UpdateVehicleRequest(vehicle=van(zoned_hub, "GHOST"))),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(request)  # type: ignore[operator]
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


HOSTILE: list[tuple[str, dict[str, Any]]] = [
    ("vehicle_id", {"vehicle_id": ""}),
    ("vehicle_id", {"vehicle_id": "a/+/#"}),
    ("vehicle_id", {"vehicle_id": "V" * 65}),
    ("plate", {"plate": ""}),
    ("plate", {"plate": "AB\n\x1b[31mCD"}),
    ("plate", {"plate": "P" * 10_000}),
    ("vehicle_class", {"vehicle_class": 0}),
    ("vehicle_class", {"vehicle_class": 99}),
    ("capacity_parcels", {"capacity_parcels": 0}),
    ("capacity_parcels", {"capacity_parcels": 4_000_000_000}),
    ("battery_kwh", {"battery_kwh": math.nan}),
    ("battery_kwh", {"battery_kwh": math.inf}),
    ("battery_kwh", {"battery_kwh": -1.0}),
    ("capacity_volume_l", {"capacity_volume_l": -5.0}),
    ("consumption_kwh_per_km", {"consumption_kwh_per_km": 0.0}),  # battery without consumption
    # An electric van without a battery, a combustion van with one.
    ("battery_kwh", {"battery_kwh": 0.0, "consumption_kwh_per_km": 0.0}),
    (
        "battery_kwh",
        {"vehicle_class": vehicles_pb2.VEHICLE_CLASS_COMBUSTION_VAN},
    ),
    ("permit_zones", {"permit_zones": ["old-town", "old-town"]}),
    ("permit_zones", {"permit_zones": ["z*"]}),
    ("permit_zones", {"permit_zones": [f"z{i}" for i in range(100)]}),
    ("depot_site", {"depot_site": ""}),
    ("driver.driver_id", {"driver": vehicles_pb2.Driver(driver_id="13812345678 Zhang San")}),
    ("driver.insurance_expiry_ms", {"driver": vehicles_pb2.Driver(insurance_expiry_ms=1)}),
    ("driver.insurance_expiry_ms", {"driver": vehicles_pb2.Driver(insurance_expiry_ms=-5)}),
    ("id_tag", {"id_tag": "tag with spaces"}),
]


@pytest.mark.parametrize(("field", "change"), HOSTILE)
async def test_malformed_records_are_refused_and_nothing_is_stored(
    zoned_hub: HubHarness, field: str, change: dict[str, Any]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub(zoned_hub).RegisterVehicle(
            vehicles_pb2.RegisterVehicleRequest(vehicle=van(zoned_hub, **change))
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"vehicle.{field}" in (err.value.details() or "")
    assert await zoned_hub.sql("SELECT id FROM vehicles") == []
    assert await zoned_hub.sql("SELECT vehicle FROM vehicle_permits") == []


async def test_bad_filters_and_missing_reason(zoned_hub: HubHarness) -> None:
    s = stub(zoned_hub)
    await s.RegisterVehicle(vehicles_pb2.RegisterVehicleRequest(vehicle=van(zoned_hub)))
    bad: list[tuple[Any, Any]] = [
        (s.ListVehicles, vehicles_pb2.ListVehiclesRequest(vehicle_class=77)),  # type: ignore[arg-type]
        (s.ListVehicles, vehicles_pb2.ListVehiclesRequest(depot_site="../etc")),
        (s.GetVehicle, vehicles_pb2.GetVehicleRequest(vehicle_id="")),
        (s.RetireVehicle, vehicles_pb2.RetireVehicleRequest(vehicle_id="VAN-1", reason=" ")),
        (s.RetireVehicle, vehicles_pb2.RetireVehicleRequest(vehicle_id="VAN-1", reason="r" * 201)),
    ]
    for call, request in bad:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
    got = await s.GetVehicle(vehicles_pb2.GetVehicleRequest(vehicle_id="VAN-1"))
    assert not got.retired
