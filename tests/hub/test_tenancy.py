"""Carriers as tenants over real gRPC and a real broker: every operator RPC, called with carrier
A's token against carrier B's parcels, couriers and compartments, is refused (or filtered)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from hub.api.auth import token_digest
from hub.api.server import SERVICES
from hub.api.tenancy import RULES
from lockerhub.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    carriers_pb2,
    carriers_pb2_grpc,
    common_pb2,
    dispatch_pb2,
    fleet_pb2,
)
from tests.hub.conftest import HubHarness, running_hub, settings_for
from tests.hub.test_flow import announcement, online

TOKENS = {
    "root": ("admin", "", "root-secret"),
    "city": ("operator", "", "city-secret"),
    "a-op": ("operator", "CAR-A", "a-secret"),
    "a-view": ("viewer", "CAR-A", "a-view-secret"),
    "b-op": ("operator", "CAR-B", "b-secret"),
    "ghost": ("operator", "CAR-GHOST", "ghost-secret"),
}
OK = grpc.StatusCode.OK
DENIED = grpc.StatusCode.PERMISSION_DENIED
MISSING = grpc.StatusCode.NOT_FOUND


def md(name: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {TOKENS[name][2]}"),)


async def code_of(call: Any) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return OK


@pytest.fixture
async def hub(tmp_path: Path, mosquitto: Any, site: str) -> AsyncIterator[HubHarness]:
    tokens = [
        {"name": n, "role": role, "sha256": token_digest(secret), **({"carrier": c} if c else {})}
        for n, (role, c, secret) in TOKENS.items()
    ]
    settings = settings_for(tmp_path, mosquitto, site, auth={"tokens": tokens})
    async with running_hub(settings, tmp_path, mosquitto) as h:
        yield h


def carriers(hub: HubHarness) -> carriers_pb2_grpc.CarrierServiceStub:
    return carriers_pb2_grpc.CarrierServiceStub(hub.channel)


def couriers(hub: HubHarness) -> carriers_pb2_grpc.CourierServiceStub:
    return carriers_pb2_grpc.CourierServiceStub(hub.channel)


async def register_carriers(hub: HubHarness) -> None:
    for cid in ("CAR-A", "CAR-B"):
        await carriers(hub).RegisterCarrier(
            carriers_pb2.RegisterCarrierRequest(carrier_id=cid, name=f"Carrier {cid}"),
            metadata=md("root"),
        )


async def two_carriers(hub: HubHarness, *, register: bool = True) -> None:
    """Carriers A and B, one parcel and one courier each (announced by the city operator)."""
    if register:
        await register_carriers(hub)
    resp = await hub.dispatch.AnnounceParcels(
        dispatch_pb2.AnnounceParcelsRequest(
            parcels=[
                announcement("P-A", hub.site, carrier_id="CAR-A"),
                announcement("P-B", hub.site, carrier_id="CAR-B"),
            ]
        ),
        metadata=md("city"),
    )
    assert all(o.accepted for o in resp.outcomes), resp
    for courier, carrier in (("CA1", "CAR-A"), ("CB1", "CAR-B")):
        await couriers(hub).RegisterCourier(
            carriers_pb2.RegisterCourierRequest(
                courier_id=courier, carrier_id=carrier, name=courier, phone="13900001111"
            ),
            metadata=md("city"),
        )


def b_compartment(hub: HubHarness) -> Callable[[], Any]:
    async def find() -> str:
        rows = await hub.sql("SELECT compartment FROM parcels WHERE id = 'P-B'")
        return str(rows[0][0])

    return find


async def test_every_rpc_is_refused_across_carriers(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        await two_carriers(hub)
        b_comp = await b_compartment(hub)()
        d, f = hub.dispatch, hub.fleet
        a = admin_pb2_grpc.AdminServiceStub(hub.channel)
        c, k = carriers(hub), couriers(hub)
        # Every operator RPC, with a request aimed at carrier B, and what A's token gets.
        calls: dict[str, tuple[Callable[[], Any], grpc.StatusCode]] = {
            "AnnounceParcels": (
                lambda: d.AnnounceParcels(
                    dispatch_pb2.AnnounceParcelsRequest(
                        parcels=[announcement("P-X", hub.site, carrier_id="CAR-B")]
                    ),
                    metadata=md("a-op"),
                ),
                DENIED,
            ),
            "GetParcel": (
                lambda: d.GetParcel(
                    dispatch_pb2.GetParcelRequest(parcel_id="P-B"), metadata=md("a-op")
                ),
                MISSING,
            ),
            "CancelParcel": (
                lambda: d.CancelParcel(
                    dispatch_pb2.CancelParcelRequest(parcel_id="P-B"), metadata=md("a-op")
                ),
                MISSING,
            ),
            "WithdrawParcel": (
                lambda: d.WithdrawParcel(
                    dispatch_pb2.WithdrawParcelRequest(parcel_id="P-B", courier_id="CA1"),
                    metadata=md("a-op"),
                ),
                MISSING,
            ),
            "ReissuePickupCode": (
                lambda: d.ReissuePickupCode(
                    dispatch_pb2.ReissuePickupCodeRequest(parcel_id="P-B", reason="x"),
                    metadata=md("a-op"),
                ),
                MISSING,
            ),
            "PlanRoutes": (
                lambda: d.PlanRoutes(
                    dispatch_pb2.PlanRoutesRequest(hub_site=hub.site), metadata=md("a-op")
                ),
                DENIED,
            ),
            "OpenCompartment": (
                lambda: f.OpenCompartment(
                    fleet_pb2.OpenCompartmentRequest(
                        cabinet_id="CAB-1", compartment_id=b_comp, reason="peek"
                    ),
                    metadata=md("a-op"),
                ),
                DENIED,
            ),
            "SetCompartmentEnabled": (
                lambda: f.SetCompartmentEnabled(
                    fleet_pb2.SetCompartmentEnabledRequest(
                        cabinet_id="CAB-1", compartment_id=b_comp, enabled=False, reason="x"
                    ),
                    metadata=md("a-op"),
                ),
                DENIED,
            ),
            "ListAlarms": (
                lambda: f.ListAlarms(fleet_pb2.ListAlarmsRequest(), metadata=md("a-op")),
                DENIED,
            ),
            "AcknowledgeAlarm": (
                lambda: f.AcknowledgeAlarm(
                    fleet_pb2.AlarmActionRequest(alarm_id="1"), metadata=md("a-op")
                ),
                DENIED,
            ),
            "ClearAlarm": (
                lambda: f.ClearAlarm(
                    fleet_pb2.AlarmActionRequest(alarm_id="1"), metadata=md("a-op")
                ),
                DENIED,
            ),
            "ListChargingPiles": (
                lambda: f.ListChargingPiles(
                    fleet_pb2.ListChargingPilesRequest(), metadata=md("a-op")
                ),
                DENIED,
            ),
            "RemoteStartCharging": (
                lambda: f.RemoteStartCharging(
                    fleet_pb2.RemoteStartChargingRequest(pile_id="X", connector_id=1, id_tag="t"),
                    metadata=md("a-op"),
                ),
                DENIED,
            ),
            "RemoteStopCharging": (
                lambda: f.RemoteStopCharging(
                    fleet_pb2.RemoteStopChargingRequest(pile_id="X", transaction_id=1),
                    metadata=md("a-op"),
                ),
                DENIED,
            ),
            "ListTokens": (
                lambda: a.ListTokens(admin_pb2.ListTokensRequest(), metadata=md("a-op")),
                DENIED,
            ),
            "RegisterCarrier": (
                lambda: c.RegisterCarrier(
                    carriers_pb2.RegisterCarrierRequest(carrier_id="CAR-Z", name="z"),
                    metadata=md("a-op"),
                ),
                DENIED,
            ),
            "ListCarriers": (
                lambda: c.ListCarriers(carriers_pb2.ListCarriersRequest(), metadata=md("a-op")),
                DENIED,
            ),
            "SetCarrierQuota": (
                lambda: c.SetCarrierQuota(
                    carriers_pb2.SetCarrierQuotaRequest(
                        quota=carriers_pb2.CarrierQuota(carrier_id="CAR-A", cabinet_id="CAB-1")
                    ),
                    metadata=md("a-op"),
                ),
                DENIED,
            ),
            "ListCarrierQuotas": (
                lambda: c.ListCarrierQuotas(
                    carriers_pb2.ListCarrierQuotasRequest(), metadata=md("a-op")
                ),
                DENIED,
            ),
            "RegisterCourier": (
                lambda: k.RegisterCourier(
                    carriers_pb2.RegisterCourierRequest(
                        courier_id="CX", carrier_id="CAR-B", name="x", phone="13900001111"
                    ),
                    metadata=md("a-op"),
                ),
                DENIED,
            ),
            **{
                m: (
                    (lambda m=m, req=req: getattr(k, m)(req, metadata=md("a-op"))),  # type: ignore[misc]
                    MISSING,
                )
                for m, req in (
                    ("GetCourier", carriers_pb2.GetCourierRequest(courier_id="CB1")),
                    ("GetCourierRecord", carriers_pb2.GetCourierRequest(courier_id="CB1")),
                    (
                        "SetCourierStatus",
                        carriers_pb2.SetCourierStatusRequest(
                            courier_id="CB1", status=carriers_pb2.COURIER_STATUS_BARRED, reason="x"
                        ),
                    ),
                    (
                        "SetCourierCode",
                        carriers_pb2.SetCourierCodeRequest(courier_id="CB1", code="12345678"),
                    ),
                    (
                        "IssueCourierToken",
                        carriers_pb2.IssueCourierTokenRequest(courier_id="CB1"),
                    ),
                )
            },
            **{
                m: (
                    (lambda m=m, req=req: getattr(k, m)(req, metadata=md("a-op"))),  # type: ignore[misc]
                    DENIED,
                )
                for m, req in (
                    (
                        "FileComplaint",
                        carriers_pb2.FileComplaintRequest(courier_id="CB1", detail="x"),
                    ),
                    (
                        "AddToBadConductList",
                        carriers_pb2.BadConductRequest(courier_id="CB1", reason="x"),
                    ),
                    (
                        "RemoveFromBadConductList",
                        carriers_pb2.BadConductRequest(courier_id="CB1", reason="x"),
                    ),
                    ("ListBadConduct", carriers_pb2.ListBadConductRequest()),
                )
            },
        }
        # Filtered (answered, but only with A's own things): checked one by one below.
        filtered = {"ListParcels", "WatchEvents", "ListCouriers"}
        shared = {"ListSites", "ListCabinets", "GetCabinet"}
        every = {m.name for s in SERVICES for m in _service(s).methods}
        assert set(calls) | filtered | shared == every, "an RPC without a tenancy test"
        assert set(RULES) <= every
        for method, (call, expected) in calls.items():
            assert await code_of(call()) == expected, method
        # Nothing changed for B.
        p_b = await d.GetParcel(dispatch_pb2.GetParcelRequest(parcel_id="P-B"), metadata=md("b-op"))
        assert p_b.state == common_pb2.PARCEL_STATE_RESERVED
        assert await hub.sql("SELECT COUNT(*) FROM parcels WHERE id = 'P-X'") == [(0,)]
        courier_b = await k.GetCourier(
            carriers_pb2.GetCourierRequest(courier_id="CB1"), metadata=md("b-op")
        )
        assert courier_b.status == carriers_pb2.COURIER_STATUS_ACTIVE
        assert not courier_b.has_code
        # The refusal of another carrier's parcel reads exactly like a parcel that does not exist.
        errors = []
        for pid in ("P-B", "P-NOPE"):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await d.GetParcel(dispatch_pb2.GetParcelRequest(parcel_id=pid), metadata=md("a-op"))
            errors.append((err.value.code(), (err.value.details() or "").replace(pid, "?")))
        assert errors[0] == errors[1]


def _service(full_name: str) -> Any:
    from google.protobuf import descriptor_pool

    return descriptor_pool.Default().FindServiceByName(full_name)


async def test_lists_and_streams_show_only_the_carriers_own(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        await register_carriers(hub)
        stream = hub.dispatch.WatchEvents(dispatch_pb2.WatchEventsRequest(), metadata=md("a-op"))
        city = hub.dispatch.WatchEvents(dispatch_pb2.WatchEventsRequest(), metadata=md("city"))
        await asyncio.sleep(0.3)  # both streams are following before anything happens
        await two_carriers(hub, register=False)
        seen_city: list[str] = []
        async with asyncio.timeout(10):
            async for e in city:
                seen_city.append(e.parcel.parcel_id)
                if seen_city.count("P-B") >= 2 and seen_city.count("P-A") >= 2:
                    break
        # A's stream: only P-A; cancel of B's parcel by B shows up in the city's, not in A's.
        await hub.dispatch.CancelParcel(
            dispatch_pb2.CancelParcelRequest(parcel_id="P-B"), metadata=md("b-op")
        )
        await hub.dispatch.CancelParcel(
            dispatch_pb2.CancelParcelRequest(parcel_id="P-A"), metadata=md("a-op")
        )
        seen_a: list[tuple[str, int]] = []
        async with asyncio.timeout(10):
            async for e in stream:
                seen_a.append((e.parcel.parcel_id, e.parcel.transition.state))
                if e.parcel.transition.state == common_pb2.PARCEL_STATE_CANCELLED:
                    break
        stream.cancel()
        city.cancel()
        assert {p for p, _ in seen_a} == {"P-A"}
        listed = await hub.dispatch.ListParcels(
            dispatch_pb2.ListParcelsRequest(), metadata=md("a-view")
        )
        assert [p.parcel_id for p in listed.parcels] == ["P-A"]
        everything = await hub.dispatch.ListParcels(
            dispatch_pb2.ListParcelsRequest(), metadata=md("city")
        )
        assert {p.parcel_id for p in everything.parcels} == {"P-A", "P-B"}
        mine = await couriers(hub).ListCouriers(
            carriers_pb2.ListCouriersRequest(carrier_id="CAR-B"), metadata=md("a-view")
        )
        assert [c.courier_id for c in mine.couriers] == ["CA1"]
        assert all("1111" in c.phone_masked and "*" in c.phone_masked for c in mine.couriers)


async def test_own_things_work_and_announcements_are_stamped(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        await two_carriers(hub)
        # An announcement without a carrier is stamped with the token's carrier.
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(
                parcels=[
                    announcement(
                        "P-A2",
                        hub.site,
                        dimensions=common_pb2.Dimensions(width_mm=50, height_mm=100, depth_mm=100),
                    )
                ]
            ),
            metadata=md("a-op"),
        )
        assert resp.outcomes[0].accepted
        assert await hub.sql("SELECT carrier FROM parcels WHERE id = 'P-A2'") == [("CAR-A",)]
        got = await hub.dispatch.GetParcel(
            dispatch_pb2.GetParcelRequest(parcel_id="P-A2"), metadata=md("a-view")
        )
        assert got.carrier_id == "CAR-A"
        # A viewer of A still cannot act (roles hold within a carrier).
        assert (
            await code_of(
                hub.dispatch.CancelParcel(
                    dispatch_pb2.CancelParcelRequest(parcel_id="P-A2"), metadata=md("a-view")
                )
            )
            == DENIED
        )
        # A's own courier: code set (only its hash is kept), token issued.
        k = couriers(hub)
        courier = await k.SetCourierCode(
            carriers_pb2.SetCourierCodeRequest(courier_id="CA1", code="24681357"),
            metadata=md("a-op"),
        )
        assert courier.has_code
        assert "24681357" not in str(await hub.sql("SELECT * FROM couriers"))
        token = await k.IssueCourierToken(
            carriers_pb2.IssueCourierTokenRequest(courier_id="CA1"), metadata=md("a-op")
        )
        assert token.token.startswith("LHC1.")
        # Re-announcing B's parcel id under A is a duplicate, whatever its state.
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-B", hub.site)]),
            metadata=md("a-op"),
        )
        assert not resp.outcomes[0].accepted
        assert await hub.sql("SELECT carrier FROM parcels WHERE id = 'P-B'") == [("CAR-B",)]


async def test_unregistered_carrier_token_gets_nothing(hub: HubHarness) -> None:
    calls = [
        hub.dispatch.ListParcels(dispatch_pb2.ListParcelsRequest(), metadata=md("ghost")),
        hub.fleet.ListSites(fleet_pb2.ListSitesRequest(), metadata=md("ghost")),
    ]
    for call in calls:
        assert await code_of(call) == DENIED


@pytest.mark.parametrize("parcel_id", ["", "P-B' OR '1'='1", "x" * 5000, "P-B\x00", "%", "*"])
async def test_hostile_parcel_ids_from_a_carrier_token(hub: HubHarness, parcel_id: str) -> None:
    await carriers(hub).RegisterCarrier(
        carriers_pb2.RegisterCarrierRequest(carrier_id="CAR-A", name="A"), metadata=md("root")
    )
    got = await code_of(
        hub.dispatch.GetParcel(
            dispatch_pb2.GetParcelRequest(parcel_id=parcel_id), metadata=md("a-op")
        )
    )
    assert got == MISSING


async def test_carrier_tokens_cannot_be_admins(tmp_path: Path, mosquitto: Any, site: str) -> None:
    from hub.errors import ConfigError

    bad = [{"name": "x", "role": "admin", "sha256": token_digest("s"), "carrier": "CAR-A"}]
    with pytest.raises(ConfigError, match="carrier-scoped"):
        settings_for(tmp_path, mosquitto, site, auth={"tokens": bad})
