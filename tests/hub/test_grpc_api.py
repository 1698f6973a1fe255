"""Operator API errors: clear status codes, nothing stored on invalid input; health; reflection."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lockerhub.v1 import common_pb2, dispatch_pb2, fleet_pb2
from tests.hub.conftest import HubHarness
from tests.hub.test_flow import announcement, online


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"parcel_id": ""}, "parcels[0].parcel_id"),
        ({"parcel_id": "bad/id"}, "parcels[0].parcel_id"),
        ({"weight_g": 0}, "parcels[0].weight_g"),
        (
            {"dimensions": common_pb2.Dimensions(width_mm=10, height_mm=0, depth_mm=5)},
            "parcels[0].dimensions.height_mm",
        ),
        ({"recipient_phone": "call me"}, "parcels[0].recipient_phone"),
        ({"destination_site": ""}, "parcels[0].destination_site"),
        ({"zone": 42}, "parcels[0].zone"),
    ],
)
async def test_invalid_announcement_stores_nothing(
    hub: HubHarness, change: dict[str, object], field: str
) -> None:
    good = announcement("P-OK", hub.site)
    bad = announcement("P-BAD", hub.site)
    for name, value in change.items():
        if isinstance(value, common_pb2.Dimensions):
            bad.dimensions.CopyFrom(value)
        else:
            setattr(bad, name, value)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await hub.dispatch.AnnounceParcels(dispatch_pb2.AnnounceParcelsRequest(parcels=[good, bad]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field.replace("[0]", "[1]") in (err.value.details() or "")
    assert "call me" not in (err.value.details() or "")
    assert await hub.sql("SELECT COUNT(*) FROM parcels") == [(0,)]
    assert await hub.sql("SELECT COUNT(*) FROM commands") == [(0,)]


async def test_batch_rules_and_per_parcel_refusals(hub: HubHarness) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await hub.dispatch.AnnounceParcels(dispatch_pb2.AnnounceParcelsRequest())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    a = announcement("P-D", hub.site)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await hub.dispatch.AnnounceParcels(dispatch_pb2.AnnounceParcelsRequest(parcels=[a, a]))
    assert "duplicates parcels[0]" in (err.value.details() or "")

    async with hub.cabinet("CAB-G") as cab:
        await cab.birth()
        await online(hub, "CAB-G")
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(
                parcels=[
                    announcement("P-A", hub.site),
                    announcement("P-NOSITE", "no-such-site"),
                    announcement(
                        "P-HUGE",
                        hub.site,
                        dimensions=common_pb2.Dimensions(width_mm=900, height_mm=900, depth_mm=900),
                    ),
                    announcement("P-COLD", hub.site, zone=common_pb2.TEMPERATURE_ZONE_CHILLED),
                ]
            )
        )
        got = {o.parcel_id: (o.accepted, o.compartment_id, o.reason) for o in resp.outcomes}
        assert got["P-A"][0]
        assert got["P-COLD"] == (True, "C01", "")
        assert got["P-NOSITE"] == (False, "", "unknown site no-such-site")
        assert got["P-HUGE"] == (False, "", "no free compartment fits")
        again = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-A", hub.site)])
        )
        assert again.outcomes[0].reason == "duplicate id"
        listed = await hub.dispatch.ListParcels(
            dispatch_pb2.ListParcelsRequest(site=hub.site, page_size=1)
        )
        assert len(listed.parcels) == 1
        assert listed.next_page_token
        assert listed.parcels[0].recipient_phone_masked == "138****1234"
        rest = await hub.dispatch.ListParcels(
            dispatch_pb2.ListParcelsRequest(site=hub.site, page_token=listed.next_page_token)
        )
        assert [p.parcel_id for p in rest.parcels] == ["P-COLD"]
        assert not rest.next_page_token
        reserved = await hub.dispatch.ListParcels(
            dispatch_pb2.ListParcelsRequest(state=common_pb2.PARCEL_STATE_PICKED_UP)
        )
        assert list(reserved.parcels) == []


async def test_not_found_and_bad_requests(hub: HubHarness) -> None:
    cases = [
        (
            hub.dispatch.GetParcel(dispatch_pb2.GetParcelRequest(parcel_id="nope")),
            grpc.StatusCode.NOT_FOUND,
        ),
        (hub.dispatch.GetParcel(dispatch_pb2.GetParcelRequest()), grpc.StatusCode.INVALID_ARGUMENT),
        (
            hub.dispatch.ListParcels(dispatch_pb2.ListParcelsRequest(page_token="garbage!")),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            hub.dispatch.ListParcels(dispatch_pb2.ListParcelsRequest(state=99)),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            hub.fleet.GetCabinet(fleet_pb2.GetCabinetRequest(cabinet_id="nope")),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            hub.fleet.OpenCompartment(
                fleet_pb2.OpenCompartmentRequest(
                    cabinet_id="nope", compartment_id="A01", reason="x"
                )
            ),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            hub.fleet.OpenCompartment(
                fleet_pb2.OpenCompartmentRequest(cabinet_id="nope", compartment_id="A01")
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            hub.fleet.OpenCompartment(
                fleet_pb2.OpenCompartmentRequest(
                    cabinet_id="c", compartment_id="A01", reason="x", ttl_seconds=100_000
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ]
    for call, code in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == code, err.value.details()
        assert err.value.details()
    assert await hub.sql("SELECT COUNT(*) FROM commands") == [(0,)]


async def test_health_follows_store_and_broker(hub: HubHarness) -> None:
    stub = health_pb2_grpc.HealthStub(hub.channel)
    resp = await stub.Check(health_pb2.HealthCheckRequest(service="lockerhub.v1.DispatchService"))
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


async def test_request_id_is_echoed(hub: HubHarness) -> None:
    call = hub.fleet.ListCabinets(
        fleet_pb2.ListCabinetsRequest(), metadata=(("x-request-id", "req-42"),)
    )
    await call
    assert ("x-request-id", "req-42") in tuple(await call.initial_metadata())
