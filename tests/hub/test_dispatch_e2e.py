"""PlanRoutes from the hub's own data, end to end: a real hub (gRPC over loopback, mosquitto),
simulated cabinets and sorting line, simulated OCPP charge points, registered vehicles.

Every rule is checked here from the raw reply and the test's own data (coordinates, hours,
windows, batteries), not with the planner's code; then the routing library's own checker runs on
the problems the hub built.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import math
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

import routing
from firmware_sim.charge_point import SimulatedChargePoint
from hub.ocpp.credentials import PileCredential, PileCredentials, hash_password
from hub.settings import (
    DeviceInventorySettings,
    HubSettings,
    OcppSettings,
    SiteSettings,
    ZoneExemption,
    ZoneSettings,
)
from lockerhub.v1 import common_pb2, device_pb2, dispatch_pb2, vehicles_pb2, vehicles_pb2_grpc
from tests.hub.cabinet import LAYOUT, FakeCabinet, inventory_entry
from tests.hub.conftest import HubHarness, eventually, running_hub, settings_for
from tests.hub.test_flow import announcement, online, parcel_state

DAY = dt.datetime(2030, 6, 3, tzinfo=dt.UTC)
START_MS = int((DAY + dt.timedelta(hours=7)).timestamp() * 1000)
MIDNIGHT_MS = int(DAY.timestamp() * 1000)
INSURED_MS = int(dt.datetime(2031, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
DETOUR = 1.3
SPEED_KMH = 25.0
VAN_BATTERY, VAN_RATE = 3.0, 0.2  # 15 km of range
BIKE_BATTERY, BIKE_RATE = 0.3, 0.02  # 15 km of range
ZONE = "old-town"
VAN_OPENS_MIN = 11 * 60  # the zone is closed to vans in the morning

# Site -> (lat, lon, hours): H the sorting hub; A in the zone; C far east (beyond a van's
# range there and back); P a service station with the free pile near C; Q beside C with a pile
# that goes offline.
GEO = {
    "H": (31.2000, 121.4000, (0, 1440)),
    "A": (31.2150, 121.4050, (7 * 60, 22 * 60)),
    "B": (31.2000, 121.4300, (0, 1440)),
    "C": (31.2000, 121.4950, (7 * 60, 20 * 60)),
    "P": (31.2000, 121.4700, (0, 1440)),
    "Q": (31.2000, 121.4940, (0, 1440)),
}
PILE_PW = "pw-0123456789abcdef"


def km(a: str, b: str) -> float:
    """Road km as the hub is configured to estimate them (great circle x detour)."""
    (la1, lo1, _), (la2, lo2, _) = GEO[a], GEO[b]
    p1, p2 = math.radians(la1), math.radians(la2)
    dp, dl = p2 - p1, math.radians(lo2 - lo1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h)) / 1000 * DETOUR


def minute(ms: int) -> float:
    return (ms - MIDNIGHT_MS) / 60_000


def hours(site: str) -> str:
    lo, hi = GEO[site][2]
    return f"{lo // 60:02d}:{lo % 60:02d}-{hi // 60:02d}:{hi % 60:02d}"


@dataclasses.dataclass
class World:
    hub: HubHarness
    tag: str
    sites: dict[str, str]  # letter -> site id
    piles: dict[str, str]  # letter -> pile id
    cabinets: dict[str, FakeCabinet]
    line: FakeCabinet

    def letter(self, site: str) -> str:
        return next(k for k, v in self.sites.items() if v == site)


def world_settings(tmp_path: Path, broker: Any, tag: str) -> tuple[HubSettings, dict[str, str]]:
    ids = {k: f"{k}{tag}" for k in GEO}
    hub = ids["H"]
    base = settings_for(tmp_path, broker, hub)
    sites = tuple(
        SiteSettings(
            id=ids[k],
            lat=GEO[k][0],
            lon=GEO[k][1],
            hours=hours(k),
            sorting_hub="" if k == "H" else hub,
            zone=ZONE if k == "A" else "",
            kind={"H": "sorting_hub", "A": "housing_estate", "P": "service_station"}.get(
                k, "business_district"
            ),
            # B's expired parcel expires seconds after its deposit.
            pickup_deadline_h=0.001 if k == "B" else 0.0,
        )
        for k in GEO
    )
    creds = PileCredentials(
        {
            f"PILE-{k}{tag}": PileCredential(ids[k], hash_password(PILE_PW, iterations=1000))
            for k in ("P", "Q")
        }
    )
    creds.save(tmp_path / "piles.json")
    devices = (
        *(inventory_entry(f"CAB-{k}{tag}", ids[k]) for k in ("A", "B", "C")),
        inventory_entry(f"SL{tag}", hub, device_pb2.DEVICE_KIND_SORTING_LINE),
        *(
            DeviceInventorySettings(
                id=f"PILE-{k}{tag}", site=ids[k], kind="charging_pile", power_kw=22.0
            )
            for k in ("P", "Q")
        ),
    )
    settings = dataclasses.replace(
        base,
        sites=sites,
        devices=devices,
        zones=(
            ZoneSettings(
                id=ZONE,
                window="11:00-20:00",
                exemptions=(ZoneExemption(vehicle_class="e_bike", window="00:00-24:00"),),
            ),
        ),
        ocpp=OcppSettings(
            enabled=True,
            port=0,
            credentials_path=tmp_path / "piles.json",
            sessions_path=tmp_path / "ocpp.db",
        ),
    )
    return settings, ids


def vehicle(hub_site: str, vid: str, vclass: int, **kw: Any) -> vehicles_pb2.RegisteredVehicle:
    fields: dict[str, Any] = {
        "vehicle_id": vid,
        "plate": f"PL-{vid}",
        "vehicle_class": vclass,
        "depot_site": hub_site,
        "permit_zones": [ZONE],
        "driver": vehicles_pb2.Driver(
            driver_id=f"D-{vid}", safety_trained=True, insurance_expiry_ms=INSURED_MS
        ),
    }
    fields.update(kw)
    return vehicles_pb2.RegisteredVehicle(**fields)


async def register(hub: HubHarness, *records: vehicles_pb2.RegisteredVehicle) -> None:
    stub = vehicles_pb2_grpc.VehicleServiceStub(hub.channel)
    for r in records:
        await stub.RegisterVehicle(vehicles_pb2.RegisterVehicleRequest(vehicle=r))


async def sort_parcels(w: World, parcels: list[dispatch_pb2.ParcelAnnouncement]) -> None:
    resp = await w.hub.dispatch.AnnounceParcels(
        dispatch_pb2.AnnounceParcelsRequest(parcels=parcels)
    )
    assert all(o.accepted for o in resp.outcomes), resp
    for p in parcels:
        await w.line.event(
            parcel_sorted=device_pb2.ParcelSorted(
                parcel_id=p.parcel_id, destination=p.destination_site, chute_id="X1"
            )
        )
    for p in parcels:

        async def is_sorted(pid: str = p.parcel_id) -> bool:
            return await parcel_state(w.hub, pid) == common_pb2.PARCEL_STATE_SORTED

        await eventually(is_sorted)


async def expire_one(w: World, parcel_id: str) -> None:
    """A parcel deposited at B that nobody picks up: it expires, waiting in its compartment."""
    site = w.sites["B"]
    resp = await w.hub.dispatch.AnnounceParcels(
        dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement(parcel_id, site)])
    )
    (outcome,) = resp.outcomes
    cab = w.cabinets["B"]
    reserve = await cab.next_command()
    await cab.result(reserve.command_id, common_pb2.COMMAND_OUTCOME_APPLIED)
    await cab.event(
        deposited=device_pb2.Deposited(
            parcel_id=parcel_id, compartment_id=outcome.compartment_id, courier_id="c1"
        )
    )

    async def expired() -> bool:
        return await parcel_state(w.hub, parcel_id) == common_pb2.PARCEL_STATE_EXPIRED

    await eventually(expired, timeout=20)


@pytest.fixture
async def world(tmp_path: Path, mosquitto: Any) -> AsyncIterator[World]:
    tag = uuid.uuid4().hex[:6]
    settings, ids = world_settings(tmp_path, mosquitto, tag)
    async with running_hub(settings, tmp_path, mosquitto) as hub:  # noqa: SIM117 - hub first
        async with (
            FakeCabinet(mosquitto, ids["A"], f"CAB-A{tag}") as ca,
            FakeCabinet(mosquitto, ids["B"], f"CAB-B{tag}") as cb,
            FakeCabinet(mosquitto, ids["C"], f"CAB-C{tag}") as cc,
            FakeCabinet(
                mosquitto, ids["H"], f"SL{tag}", kind=device_pb2.DEVICE_KIND_SORTING_LINE
            ) as line,
        ):
            for cab in (ca, cb, cc, line):
                await cab.birth(() if cab is line else LAYOUT)
                await online(hub, cab.device)
            yield World(
                hub,
                tag,
                ids,
                {k: f"PILE-{k}{tag}" for k in ("P", "Q")},
                {"A": ca, "B": cb, "C": cc},
                line,
            )


def charge_point(w: World, letter: str) -> SimulatedChargePoint:
    system = w.hub.app.charging
    return SimulatedChargePoint(
        system.url(w.sites[letter], w.piles[letter]), w.piles[letter], password=PILE_PW
    )


def check_windows(
    w: World, reply: dispatch_pb2.PlanRoutesResponse, classes: dict[str, int]
) -> None:
    """Arrival and departure inside the site's hours and, in the zone, the class's window."""
    for route in reply.routes:
        for stop in route.stops:
            letter = w.letter(stop.site)
            lo, hi = GEO[letter][2]
            if letter == "A" and classes[route.vehicle_id] != vehicles_pb2.VEHICLE_CLASS_E_BIKE:
                lo = max(lo, VAN_OPENS_MIN)
                hi = min(hi, 20 * 60)
            assert minute(START_MS) - 1e-6 <= minute(stop.arrival_ms)
            assert lo - 0.01 <= minute(stop.arrival_ms) <= hi + 0.01, (route.vehicle_id, stop)
            assert minute(stop.departure_ms) <= hi + 0.01, (route.vehicle_id, stop)
            assert stop.departure_ms >= stop.arrival_ms


def battery_trace(w: World, route: dispatch_pb2.VehicleRoute, battery: float, rate: float,
                  *, charges: bool = True) -> list[float]:  # fmt: skip
    """The battery on arriving anywhere (the test's own distances; piles add their charge)."""
    levels, level, prev = [], battery, "H"
    for stop in route.stops:
        letter = w.letter(stop.site)
        level -= rate * km(prev, letter)
        levels.append(level)
        if charges:
            level += stop.charge_kwh
        prev = letter
    levels.append(level - rate * km(prev, "H"))
    return levels


async def test_plan_follows_the_city_rules(world: World) -> None:
    w, hub = world, world.hub
    hub_site = w.sites["H"]
    await register(
        hub,
        vehicle(
            hub_site,
            f"VAN{w.tag}",
            vehicles_pb2.VEHICLE_CLASS_ELECTRIC_VAN,
            capacity_parcels=50,
            battery_kwh=VAN_BATTERY,
            consumption_kwh_per_km=VAN_RATE,
            id_tag="FLEET01",
        ),
        vehicle(
            hub_site,
            f"EB{w.tag}",
            vehicles_pb2.VEHICLE_CLASS_E_BIKE,
            plate=f"FRAME-{w.tag}",
            capacity_parcels=3,
            battery_kwh=BIKE_BATTERY,
            consumption_kwh_per_km=BIKE_RATE,
        ),
    )
    classes = {f"VAN{w.tag}": vehicles_pb2.VEHICLE_CLASS_ELECTRIC_VAN}
    classes[f"EB{w.tag}"] = vehicles_pb2.VEHICLE_CLASS_E_BIKE
    await expire_one(w, f"RET{w.tag}")
    parcels = [
        announcement(f"PA1{w.tag}", w.sites["A"]),
        announcement(f"PA2{w.tag}", w.sites["A"]),
        announcement(f"PB1{w.tag}", w.sites["B"]),
        announcement(f"PC1{w.tag}", w.sites["C"]),
        announcement(f"PC2{w.tag}", w.sites["C"]),
    ]
    await sort_parcels(w, parcels)
    async with charge_point(w, "P"):
        async with charge_point(w, "Q"):
            pass  # Q booted once and left: known to the hub, offline
        want = {w.piles["P"]: True, w.piles["Q"]: False}
        await eventually(lambda: asyncio.sleep(0, _pile_states(w) == want))
        reply = await hub.dispatch.PlanRoutes(
            dispatch_pb2.PlanRoutesRequest(
                hub_site=hub_site,
                start_ms=START_MS,
                time_limit_s=3,
                empty_containers=[dispatch_pb2.SiteCount(site=w.sites["C"], count=2)],
            ),
            timeout=240,
        )

    # Every parcel is planned, once, to its own site; returns and containers are collected.
    assert not reply.unserved_stops, reply.unserved_stops
    delivered = {pid: s.site for r in reply.routes for s in r.stops for pid in s.deliver_parcel_ids}
    assert delivered == {p.parcel_id: p.destination_site for p in parcels}
    collected = [
        (s.site, pid) for r in reply.routes for s in r.stops for pid in s.collect_parcel_ids
    ]
    assert collected == [(w.sites["B"], f"RET{w.tag}")]
    containers = {
        s.site: s.container_count for r in reply.routes for s in r.stops if s.container_count
    }
    assert containers == {w.sites["C"]: 2}
    assert reply.plan_id
    check_windows(w, reply, classes)

    # The e-bike carries no more than it holds (deliveries and pickups are parcels).
    for route in reply.routes:
        cap = 3 if route.vehicle_id == f"EB{w.tag}" else 50
        load = sum(len(s.deliver_parcel_ids) for s in route.stops)
        assert load <= cap
        for s in route.stops:
            load += len(s.collect_parcel_ids) + s.container_count - len(s.deliver_parcel_ids)
            assert load <= cap

    # The van reaches C only by charging at P, the free registered pile; never at offline Q.
    van = next(r for r in reply.routes if r.vehicle_id == f"VAN{w.tag}")
    assert w.sites["C"] in [s.site for s in van.stops]
    charges = [s for s in van.stops if s.charging_pile_id]
    assert [s.charging_pile_id for s in charges] == [w.piles["P"]]
    assert charges[0].site == w.sites["P"]
    assert charges[0].charge_kwh > 0
    assert min(battery_trace(w, van, VAN_BATTERY, VAN_RATE)) >= -1e-6
    assert min(battery_trace(w, van, VAN_BATTERY, VAN_RATE, charges=False)) < 0
    assert max(battery_trace(w, van, VAN_BATTERY, VAN_RATE)) <= VAN_BATTERY + 1e-6
    # The charge takes its time at 22 kW before the van leaves the pile.
    assert minute(charges[0].departure_ms) - minute(charges[0].arrival_ms) >= (
        charges[0].charge_kwh / 22.0 * 60 - 0.01
    )
    assert van.charged_kwh == pytest.approx(charges[0].charge_kwh)
    bike = [r for r in reply.routes if r.vehicle_id == f"EB{w.tag}"]
    for r in bike:
        assert min(battery_trace(w, r, BIKE_BATTERY, BIKE_RATE)) >= -1e-6
        assert not [s for s in r.stops if s.charging_pile_id]  # P has no e-bike charging hours

    # Travel times follow the configured speed between consecutive stops.
    for route in reply.routes:
        prev, t = "H", minute(route.start_ms)
        for s in route.stops:
            letter = w.letter(s.site)
            assert minute(s.arrival_ms) >= t + km(prev, letter) / SPEED_KMH * 60 - 0.01
            prev, t = letter, minute(s.departure_ms)

    # The routing library's own checker on the problems the hub built.
    _inp, out = hub.app.dispatcher.solution(reply.plan_id)  # type: ignore[union-attr,misc]
    assert out.subproblems
    for sub in out.subproblems:
        assert routing.check_plan(sub.problem, sub.plan, allow_unserved=True) == []

    # Stored: the driver's view and the whole plan come back unchanged.
    again = await hub.dispatch.GetRoutePlan(dispatch_pb2.GetRoutePlanRequest(plan_id=reply.plan_id))
    assert again == reply
    mine = await hub.dispatch.GetRoutePlan(
        dispatch_pb2.GetRoutePlanRequest(vehicle_id=f"VAN{w.tag}")
    )
    assert [r.vehicle_id for r in mine.routes] == [f"VAN{w.tag}"]
    assert mine.routes[0] == van

    # Metrics for the policy: every planned parcel is new-energy, no violations.
    registry = hub.app.metrics.registry
    new = sum(
        registry.get_sample_value(
            "lockerhub_dispatch_planned_parcels",
            {"site": hub_site, "vehicle_class": c, "new_energy": "true"},
        )
        or 0
        for c in ("e_bike", "electric_van")
    )
    assert new == len(parcels)
    assert registry.get_sample_value("lockerhub_dispatch_permit_violations_total") == 0
    assert registry.get_sample_value(
        "lockerhub_dispatch_planned_charge_kwh", {"site": hub_site}
    ) == pytest.approx(van.charged_kwh)

    # The van drops out: the re-plan leaves it out and says what it cannot do without it.
    replanned = await hub.dispatch.ReplanRoutes(
        dispatch_pb2.ReplanRoutesRequest(
            plan_id=reply.plan_id,
            exclude_vehicle_ids=[f"VAN{w.tag}"],
            reason="flat tyre",
            time_limit_s=2,
        ),
        timeout=240,
    )
    assert replanned.replaces_plan_id == reply.plan_id
    assert {r.vehicle_id for r in replanned.routes} <= {f"EB{w.tag}"}
    assert [v.vehicle_id for v in replanned.skipped_vehicles] == [f"VAN{w.tag}"]
    assert w.sites["C"] in {u.site for u in replanned.unserved_stops}
    for u in replanned.unserved_stops:
        assert u.reason
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await hub.dispatch.ReplanRoutes(
            dispatch_pb2.ReplanRoutesRequest(
                plan_id=reply.plan_id, exclude_vehicle_ids=[f"EB{w.tag}"], reason="again"
            )
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # already replaced


def _pile_states(w: World) -> dict[str, bool]:
    return {p.pile_id: p.online for p in w.hub.app.charging.piles()}
