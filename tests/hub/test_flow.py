"""The parcel journey through a real broker: announce, reserve, deposit, code, pickup; commands."""

from __future__ import annotations

import asyncio
import urllib.request

import grpc
import pytest

from lockerhub.codes import verify_code
from lockerhub.v1 import common_pb2, device_pb2, dispatch_pb2, fleet_pb2
from tests.hub.conftest import HubHarness, eventually


@pytest.fixture
def hub(any_store_hub: HubHarness) -> HubHarness:
    """Every flow in this module runs on SQLite and on PostgreSQL."""
    return any_store_hub


PHONE = "13812341234"


def announcement(parcel_id: str, site: str, **kw: object) -> dispatch_pb2.ParcelAnnouncement:
    fields: dict[str, object] = {
        "parcel_id": parcel_id,
        "destination_site": site,
        "dimensions": common_pb2.Dimensions(width_mm=300, height_mm=150, depth_mm=100),
        "weight_g": 1200,
        "recipient_phone": PHONE,
        "electronic_waybill": True,
    }
    fields.update(kw)
    return dispatch_pb2.ParcelAnnouncement(**fields)  # type: ignore[arg-type]


async def online(hub: HubHarness, device: str) -> None:
    async def check() -> bool:
        rows = await hub.sql("SELECT online FROM devices WHERE id = ?", (device,))
        return bool(rows and rows[0][0] == 1)

    await eventually(check)


async def parcel_state(hub: HubHarness, parcel_id: str) -> int:
    p = await hub.dispatch.GetParcel(dispatch_pb2.GetParcelRequest(parcel_id=parcel_id))
    return p.state


async def test_parcel_journey(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")

        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-1", hub.site)])
        )
        (outcome,) = resp.outcomes
        # 300x150x100 fits S (80 mm) only when rotated: 100 > 80, so M is the smallest fit.
        assert outcome.accepted
        assert outcome.cabinet_id == "CAB-1"
        assert outcome.compartment_id == "A02"

        reserve = await cab.next_command()
        assert reserve.WhichOneof("body") == "reserve_compartment"
        assert reserve.reserve_compartment.parcel_id == "P-1"
        assert reserve.expires_ms > reserve.issued_ms
        await cab.result(reserve.command_id, common_pb2.COMMAND_OUTCOME_APPLIED)

        await cab.event(
            deposited=device_pb2.Deposited(parcel_id="P-1", compartment_id="A02", courier_id="c7")
        )
        set_code = await cab.next_command()
        assert set_code.WhichOneof("body") == "set_pickup_code"
        code_hash = set_code.set_pickup_code.code_hash
        assert code_hash.startswith("pbkdf2_sha256$")

        notices = await eventually(lambda: asyncio.sleep(0, hub.notifications()))
        (notice,) = notices
        assert notice["parcel_id"] == "P-1"
        assert notice["phone_masked"] == "138****1234"
        assert notice["cabinet"] == "CAB-1"
        assert notice["compartment"] == "A02"
        assert verify_code(notice["code"], code_hash)
        # Only the salted hash is stored; the plaintext code is nowhere in the database.
        (stored,) = await hub.sql("SELECT code_hash FROM pickup_codes WHERE parcel_id = 'P-1'")
        assert stored[0] == code_hash
        assert notice["code"] not in str(await hub.sql("SELECT * FROM pickup_codes"))

        parcel = await hub.dispatch.GetParcel(dispatch_pb2.GetParcelRequest(parcel_id="P-1"))
        assert parcel.state == common_pb2.PARCEL_STATE_DEPOSITED
        assert parcel.recipient_phone_masked == "138****1234"
        assert PHONE not in str(parcel)
        assert [t.state for t in parcel.history] == [
            common_pb2.PARCEL_STATE_ANNOUNCED,
            common_pb2.PARCEL_STATE_RESERVED,
            common_pb2.PARCEL_STATE_DEPOSITED,
        ]
        assert parcel.history[-1].actor == "device:CAB-1"
        assert parcel.pickup_deadline_ms > 0

        await cab.event(picked_up=device_pb2.PickedUp(parcel_id="P-1", compartment_id="A02"))

        async def picked() -> bool:
            return await parcel_state(hub, "P-1") == common_pb2.PARCEL_STATE_PICKED_UP

        await eventually(picked)
        cabinet = await hub.fleet.GetCabinet(fleet_pb2.GetCabinetRequest(cabinet_id="CAB-1"))
        a02 = next(c for c in cabinet.compartments if c.spec.compartment_id == "A02")
        assert a02.state == common_pb2.COMPARTMENT_STATE_FREE
        assert not a02.parcel_id

        # Commands were recorded with their results.
        rows = await hub.sql("SELECT type, state, outcome FROM commands ORDER BY created_ms")
        assert rows[0] == ("reserve_compartment", "succeeded", "applied")
        assert rows[1][0] == "set_pickup_code"

        # /metrics counts the events (served on the actual bound port), and the occupancy
        # snapshot (refreshed on its own tick) shows the freed compartment.
        free_m = f'lockerhub_compartments{{site="{hub.site}",size="M",state="free"}} 2.0'

        async def scraped() -> str:
            body = await asyncio.to_thread(
                lambda: urllib.request.urlopen(hub.app.metrics_url, timeout=5).read().decode()
            )
            return body if free_m in body else ""

        body = await eventually(scraped)
        assert 'lockerhub_events_applied_total{type="deposited"} 1.0' in body
        assert 'lockerhub_events_applied_total{type="picked_up"} 1.0' in body
        assert 'lockerhub_parcel_transitions_total{state="picked_up"} 1.0' in body
        assert PHONE not in body
        assert "P-1" not in body


async def test_duplicate_event_applied_once(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-2") as cab:
        await cab.birth()
        await online(hub, "CAB-2")
        await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-2", hub.site)])
        )
        await cab.next_command()
        event = cab.make_event(
            deposited=device_pb2.Deposited(parcel_id="P-2", compartment_id="A02")
        )
        before = hub.dropped("duplicate")
        for _ in range(3):  # QoS 1 redelivery, or an edge replaying its outbox
            await cab.send_event(event)
        await eventually(lambda: asyncio.sleep(0, hub.dropped("duplicate") == before + 2))
        # The notice leaves through the outbox after the commit (claimed, then sent): wait for it.
        await eventually(lambda: asyncio.sleep(0, len(hub.notifications()) >= 1))
        assert len(hub.notifications()) == 1
        rows = await hub.sql("SELECT COUNT(*) FROM parcel_transitions WHERE state = 'deposited'")
        assert rows == [(1,)]
        # Same seq with a new event id is also a replay.
        again = device_pb2.DeviceEvent()
        again.CopyFrom(event)
        again.event_id = "another-id"
        await cab.send_event(again)
        await eventually(lambda: asyncio.sleep(0, hub.dropped("duplicate") == before + 3))


async def test_stale_will_is_ignored(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-3", boot_count=5) as cab:
        await cab.birth()
        await online(hub, "CAB-3")
        before = hub.dropped("stale")
        await cab.offline(boot_count=4)  # a late will from the previous session
        await eventually(lambda: asyncio.sleep(0, hub.dropped("stale") == before + 1))
        cabinet = await hub.fleet.GetCabinet(fleet_pb2.GetCabinetRequest(cabinet_id="CAB-3"))
        assert cabinet.online
        assert cabinet.boot_count == 5
        await cab.offline(boot_count=5)  # this session's own offline counts

        async def offline() -> bool:
            c = await hub.fleet.GetCabinet(fleet_pb2.GetCabinetRequest(cabinet_id="CAB-3"))
            return not c.online

        await eventually(offline)


async def test_open_compartment_round_trip(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-4") as cab:
        await cab.birth()
        await online(hub, "CAB-4")

        async def answer() -> None:
            command = await cab.next_command()
            assert command.open_compartment.compartment_id == "A01"
            assert command.open_compartment.reason == "courier stuck"
            await cab.result(
                command.command_id,
                common_pb2.COMMAND_OUTCOME_JAMMED,
                relay_fired=True,
                detail="door sensor stayed closed",
            )

        answering = asyncio.create_task(answer())
        resp = await hub.fleet.OpenCompartment(
            fleet_pb2.OpenCompartmentRequest(
                cabinet_id="CAB-4", compartment_id="A01", reason="courier stuck"
            )
        )
        await answering
        # Relay fired is not door opened: both are reported.
        assert resp.outcome == common_pb2.COMMAND_OUTCOME_JAMMED
        assert resp.relay_fired
        rows = await hub.sql(
            "SELECT state, outcome, actor FROM commands WHERE id = ?", (resp.command_id,)
        )
        assert rows == [("failed", "jammed", "operator")]


async def test_open_compartment_times_out(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-5") as cab:
        await cab.birth()
        await online(hub, "CAB-5")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await hub.fleet.OpenCompartment(
                fleet_pb2.OpenCompartmentRequest(
                    cabinet_id="CAB-5", compartment_id="A01", reason="audit", ttl_seconds=1
                )
            )
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "CAB-5" in (err.value.details() or "")
        command = await cab.next_command()  # it was sent, with its expiry
        assert command.expires_ms - command.issued_ms == 1000
        rows = await hub.sql("SELECT state FROM commands WHERE id = ?", (command.command_id,))
        assert rows == [("timed_out",)]


async def test_open_compartment_offline_cabinet_unavailable(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-6") as cab:
        await cab.birth()
        await online(hub, "CAB-6")
        await cab.offline(boot_count=1)

        async def offline() -> bool:
            rows = await hub.sql("SELECT online FROM devices WHERE id = 'CAB-6'")
            return rows == [(0,)]

        await eventually(offline)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await hub.fleet.OpenCompartment(
                fleet_pb2.OpenCompartmentRequest(
                    cabinet_id="CAB-6", compartment_id="A01", reason="audit"
                )
            )
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
