"""Issue 10.2: who may send which device event, for which parcels, at which site."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from pathlib import Path
from typing import Any

import pytest

from hub.errors import Unauthorized
from hub.ingest import authz
from hub.ingest.authz import Scope
from hub.metrics.catalogue import DROP_REASONS
from hub.settings import SiteSettings
from lockerhub.topics import Kind, Topic
from lockerhub.v1 import common_pb2, device_pb2, dispatch_pb2, sorting_pb2
from tests.hub.cabinet import LAYOUT, FakeCabinet, inventory_entry
from tests.hub.conftest import HubHarness, eventually, running_hub, settings_for
from tests.hub.test_authz_rules import ALLOWED, parcel_record
from tests.hub.test_flow import announcement, online, parcel_state

KINDS = {
    "cabinet": device_pb2.DEVICE_KIND_CABINET,
    "sorting_line": device_pb2.DEVICE_KIND_SORTING_LINE,
    "charging_pile": device_pb2.DEVICE_KIND_CHARGING_PILE,
    "screening_station": device_pb2.DEVICE_KIND_SCREENING_STATION,
}
BODIES = tuple(f.name for f in device_pb2.DeviceEvent.DESCRIPTOR.oneofs_by_name["body"].fields)
# The whole table (written out once, in test_authz_rules.ALLOWED): (kind, body) -> scope,
# None = refused.
EXPECTED: dict[tuple[str, str], Scope | None] = {
    (kind, body): None for kind in (*KINDS, "unprovisioned", "unspecified") for body in BODIES
} | dict(ALLOWED)


@pytest.mark.parametrize(("kind", "body"), sorted(EXPECTED))
def test_table(kind: str, body: str) -> None:
    topic = Topic("S1", "D1", Kind.EVENT)
    expected = EXPECTED[(kind, body)]
    if expected is None:
        with pytest.raises(Unauthorized):
            authz.authorize(kind, body, topic)
    else:
        assert authz.authorize(kind, body, topic) is expected
    assert set(authz.RULES) <= set(EXPECTED)
    assert "unauthorized" in DROP_REASONS


def test_parcel_scopes() -> None:
    topic = Topic("S1", "CAB", Kind.EVENT)
    authz.check_parcel(Scope.OWN_COMPARTMENT, topic, parcel_record("S1", "CAB", "A1"), "A1")
    for parcel, compartment in (
        (parcel_record("S1", "CAB", "A1"), "A2"),
        (parcel_record("S1", "X", "A1"), "A1"),
    ):
        with pytest.raises(Unauthorized):
            authz.check_parcel(Scope.OWN_COMPARTMENT, topic, parcel, compartment)
    authz.check_parcel(Scope.SITE_PARCEL, topic, parcel_record("S1"))
    authz.check_parcel(Scope.SITE_PARCEL, topic, parcel_record("S2"), sorting_hub="S1")
    with pytest.raises(Unauthorized):
        authz.check_parcel(Scope.SITE_PARCEL, topic, parcel_record("S2"))
    with pytest.raises(Unauthorized):
        authz.check_parcel(Scope.SITE_PARCEL, topic, parcel_record("S2"), sorting_hub="S3")
    with pytest.raises(Unauthorized):
        authz.check_parcel(Scope.OWN, topic, parcel_record("S1", "CAB", "A1"), "A1")


def _outcomes(hub: HubHarness) -> float:
    """Every event the hub finished with: applied (any body) or dropped (any reason)."""
    m = hub.app.metrics
    applied = sum(m.events_applied.labels(b)._value.get() for b in BODIES)
    dropped = sum(m.ingest_dropped.labels(r)._value.get() for r in DROP_REASONS)
    return float(applied + dropped)


def _body(body: str, parcel_id: str, compartment: str) -> dict[str, Any]:
    match body:
        case "deposited":
            return {body: device_pb2.Deposited(parcel_id=parcel_id, compartment_id=compartment)}
        case "picked_up":
            return {body: device_pb2.PickedUp(parcel_id=parcel_id, compartment_id=compartment)}
        case "pickup_code_rejected":
            return {body: device_pb2.PickupCodeRejected(consecutive_failures=1)}
        case "door_changed":
            return {
                body: device_pb2.DoorChanged(compartment_id=compartment, open=False, commanded=True)
            }
        case "alarm":
            return {
                body: device_pb2.AlarmRaised(kind=common_pb2.ALARM_KIND_SENSOR_FAULT, active=True)
            }
        case "parcel_sorted":
            return {
                body: device_pb2.ParcelSorted(parcel_id=parcel_id, destination="D", chute_id="C1")
            }
        case "parcel_rejected":
            return {body: device_pb2.ParcelRejected(chute_id="EX")}
        case "sort_plan_applied":
            return {body: sorting_pb2.SortPlanApplied(plan_version=1)}
        case "parcel_screened":
            return {
                body: sorting_pb2.ParcelScreened(
                    parcel_id=parcel_id, result=sorting_pb2.ParcelScreened.RESULT_CLEAR
                )
            }
        case "container_moved":
            return {
                body: sorting_pb2.ContainerMoved(
                    container_id="BAG-1",
                    type=sorting_pb2.CONTAINER_TYPE_BAG,
                    action=sorting_pb2.CONTAINER_ACTION_RETURNED,
                )
            }
    raise AssertionError(body)


async def test_every_kind_and_body_through_the_hub(hub: HubHarness) -> None:
    """Each (kind, body) pair sent by a real device: refused pairs are dropped as unauthorized
    with an alarm for the sender and change nothing; allowed pairs are not refused."""
    devices = {kind: hub.cabinet(f"D-{kind}", kind=value) for kind, value in KINDS.items()}
    async with (
        devices["cabinet"] as cab,
        devices["sorting_line"],
        devices["charging_pile"],
        devices["screening_station"],
    ):
        for kind, device in devices.items():
            await device.birth(() if kind != "cabinet" else LAYOUT)
            await online(hub, device.device)
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-Z", hub.site)])
        )
        compartment = resp.outcomes[0].compartment_id
        assert resp.outcomes[0].cabinet_id == cab.device
        for (kind, body), scope in sorted(EXPECTED.items()):
            if kind not in KINDS or body in ("deposited", "picked_up", "parcel_sorted"):
                continue  # parcel-moving bodies: below, so that the parcel's state is known
            before, refused = _outcomes(hub), hub.dropped("unauthorized")
            await devices[kind].event(**_body(body, "P-Z", compartment))
            await eventually(lambda b=before: asyncio.sleep(0, _outcomes(hub) > b))
            assert (hub.dropped("unauthorized") > refused) == (scope is None), (kind, body)

        # Parcel-moving bodies from every kind but the allowed one: refused, parcel unchanged.
        for body, allowed in (
            ("parcel_sorted", "sorting_line"),
            ("deposited", "cabinet"),
            ("picked_up", "cabinet"),
        ):
            for kind in KINDS:
                if kind == allowed:
                    continue
                refused = hub.dropped("unauthorized")
                await devices[kind].event(**_body(body, "P-Z", compartment))
                await eventually(
                    lambda r=refused: asyncio.sleep(0, hub.dropped("unauthorized") > r)
                )
        assert await parcel_state(hub, "P-Z") == common_pb2.PARCEL_STATE_RESERVED
        refused_by = await hub.sql(
            "SELECT device FROM alarms WHERE kind = 'unauthorized_event' AND status = 'raised'"
        )
        assert sorted(d for (d,) in refused_by) == sorted(d.device for d in devices.values())
        assert hub.app.metrics.alarms.labels("unauthorized_event")._value.get() == len(devices)

        # The allowed ones still work.
        await devices["sorting_line"].event(**_body("parcel_sorted", "P-Z", compartment))
        await eventually(
            lambda: _is(hub, "P-Z", common_pb2.PARCEL_STATE_SORTED),
        )
        await cab.event(**_body("deposited", "P-Z", compartment))
        await eventually(lambda: _is(hub, "P-Z", common_pb2.PARCEL_STATE_DEPOSITED))


async def _is(hub: HubHarness, parcel_id: str, state: int) -> bool:
    return await parcel_state(hub, parcel_id) == state


async def test_a_sorting_line_cannot_sort_for_another_site(tmp_path: Path, mosquitto: Any) -> None:
    """The finding: a line at another site moved any parcel to sorted (and withdrawn ones to
    returned). Only a line at the parcel's site, or at its configured sorting hub, may."""
    tag = uuid.uuid4().hex[:6]
    here, hub_site, elsewhere = f"A{tag}", f"H{tag}", f"X{tag}"
    line_kind = device_pb2.DEVICE_KIND_SORTING_LINE
    settings = dataclasses.replace(
        settings_for(tmp_path, mosquitto, here),
        sites=(
            SiteSettings(id=here, sorting_hub=hub_site),
            SiteSettings(id=hub_site),
            SiteSettings(id=elsewhere),
        ),
        devices=(
            inventory_entry(f"CA{tag}", here),
            inventory_entry(f"LX{tag}", elsewhere, line_kind),
            inventory_entry(f"LH{tag}", hub_site, line_kind),
        ),
    )
    async with running_hub(settings, tmp_path, mosquitto) as hub:  # noqa: SIM117 - hub first
        async with (
            FakeCabinet(mosquitto, here, f"CA{tag}") as cab,
            FakeCabinet(mosquitto, elsewhere, f"LX{tag}", kind=line_kind) as stranger,
            FakeCabinet(mosquitto, hub_site, f"LH{tag}", kind=line_kind) as line,
        ):
            await cab.birth()
            for d in (stranger, line):
                await d.birth(())
            for d in (cab, stranger, line):
                await online(hub, d.device)
            resp = await hub.dispatch.AnnounceParcels(
                dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-X", here)])
            )
            assert resp.outcomes[0].accepted
            await stranger.event(
                parcel_sorted=device_pb2.ParcelSorted(
                    parcel_id="P-X", destination=here, chute_id="C1"
                )
            )
            await eventually(lambda: asyncio.sleep(0, hub.dropped("unauthorized") == 1))
            assert await parcel_state(hub, "P-X") == common_pb2.PARCEL_STATE_RESERVED
            alarms = await hub.sql(
                "SELECT device, site FROM alarms WHERE kind = 'unauthorized_event'"
            )
            assert alarms == [(stranger.device, elsewhere)]
            await line.event(
                parcel_sorted=device_pb2.ParcelSorted(
                    parcel_id="P-X", destination=here, chute_id="C1"
                )
            )
            await eventually(lambda: _is(hub, "P-X", common_pb2.PARCEL_STATE_SORTED))
