"""Malformed, oversized, misplaced and unknown MQTT input is dropped, counted, and harmless."""

from __future__ import annotations

import asyncio
from typing import Any

from lockerhub.codec import CONTENT_TYPE_JSON, encode, encode_json
from lockerhub.topics import Kind, Topic
from lockerhub.v1 import common_pb2, device_pb2, dispatch_pb2
from tests.hub.cabinet import LAYOUT, inventory_entry
from tests.hub.conftest import HubHarness, eventually
from tests.hub.test_flow import announcement, online


async def dropped_once(hub: HubHarness, reason: str, before: float) -> None:
    await eventually(lambda: asyncio.sleep(0, hub.dropped(reason) >= before + 1))


async def test_hostile_payloads_are_dropped_and_hub_keeps_running(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-H") as cab, hub.cabinet("CAB-O") as other:
        await cab.birth()
        await other.birth()
        await online(hub, "CAB-H")
        await online(hub, "CAB-O")
        await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-H", hub.site)])
        )
        await cab.next_command()
        state_before = await hub.sql("SELECT * FROM parcels")

        cases: list[tuple[str, bytes, dict[str, object]]] = [
            ("undecodable", b"\xff\xff\xff\x00garbage", {}),
            ("oversized", b"\x00" * (64 * 1024 + 1), {}),
            ("content_type", b"{}", {"content_type": "text/xml"}),
            ("undecodable", b'{"eventId": 12', {"content_type": CONTENT_TYPE_JSON}),
            # Valid protobuf, invalid content: seq 0, timestamp in 1970.
            ("invalid", encode(device_pb2.DeviceEvent(event_id="e", seq=0, ts_ms=1)), {}),
        ]
        for reason, payload, kw in cases:
            before = hub.dropped(reason)
            await cab.publish(Kind.EVENT, payload, **kw)  # type: ignore[arg-type]
            await dropped_once(hub, reason, before)

        # A deposit naming another cabinet's compartment (the cabinet's own id space only).
        before = hub.dropped("unknown_compartment")
        await cab.event(deposited=device_pb2.Deposited(parcel_id="P-H", compartment_id="ZZ9"))
        await dropped_once(hub, "unknown_compartment", before)
        # The right compartment id, but the parcel is reserved at another cabinet: refused by
        # the authorization table (hub.ingest.authz), with an alarm for the sender.
        before = hub.dropped("unauthorized")
        await other.event(deposited=device_pb2.Deposited(parcel_id="P-H", compartment_id="A02"))
        await dropped_once(hub, "unauthorized", before)
        # Picked up before it was deposited: an illegal transition.
        before = hub.dropped("mismatch")
        await cab.event(picked_up=device_pb2.PickedUp(parcel_id="P-H", compartment_id="A02"))
        await dropped_once(hub, "mismatch", before)
        # A result for a command nobody sent.
        before = hub.dropped("unknown_command")
        await cab.result("no-such-command", common_pb2.COMMAND_OUTCOME_OPENED)
        await dropped_once(hub, "unknown_command", before)

        assert await hub.sql("SELECT * FROM parcels") == state_before
        assert hub.notifications() == []

        # The hub still works: a valid JSON-mapped deposit (third-party device) is applied.
        event = cab.make_event(
            deposited=device_pb2.Deposited(parcel_id="P-H", compartment_id="A02")
        )
        await cab.publish(Kind.EVENT, encode_json(event), content_type=CONTENT_TYPE_JSON)
        await eventually(lambda: asyncio.sleep(0, hub.notifications()))


async def test_unknown_device_and_wrong_topic(hub: HubHarness) -> None:
    # A registered cabinet whose account may publish under its own subtree only.
    async with hub.cabinet("CAB-U", provision=False) as cab:
        before = hub.dropped("unknown_device")
        await cab.event(alarm=device_pb2.AlarmRaised(kind=common_pb2.ALARM_KIND_DOOR_JAMMED))
        await dropped_once(hub, "unknown_device", before)  # no birth yet: not registered

        await cab.birth()  # the birth registers it (auto_register), unprovisioned
        await online(hub, "CAB-U")
        # ... for presence only: no compartments, no events (hub.ingest.authz), an alarm.
        assert await hub.sql("SELECT COUNT(*) FROM compartments WHERE device = 'CAB-U'") == [(0,)]
        assert await hub.sql(
            "SELECT detail FROM alarms WHERE device = 'CAB-U' AND kind = 'layout_mismatch'"
        ) == [("not provisioned by the operator (4 reported compartments ignored)",)]
        before = hub.dropped("unauthorized")
        await cab.event(alarm=device_pb2.AlarmRaised(kind=common_pb2.ALARM_KIND_DOOR_JAMMED))
        await dropped_once(hub, "unauthorized", before)

    # A birth at a site the hub does not know is refused.
    from hub.mqtt.link import Inbound
    from tests.hub.cabinet import status

    before = hub.dropped("unknown_site")
    birth = encode(status(device_pb2.DeviceStatus.STATE_ONLINE, 1))
    await hub.app.ingestor.handle(Inbound(str(Topic("mars", "CAB-X", Kind.STATUS)), birth, None))
    assert hub.dropped("unknown_site") == before + 1
    assert await hub.sql("SELECT id FROM devices WHERE id = 'CAB-X'") == []


async def test_messages_on_bad_topics_are_dropped(hub: HubHarness) -> None:
    """Topics the broker's ACL would refuse for devices are checked by the hub too (direct feed)."""
    ingest = hub.app.ingestor
    from hub.mqtt.link import Inbound

    before = hub.dropped("topic")
    await ingest.handle(Inbound("lockerhub/v1/x/y/unknown_kind", b"", None))
    await ingest.handle(Inbound("not/our/tree", b"", None))
    # A command echoed back is hub-to-device: never ingested.
    await ingest.handle(Inbound(str(Topic(hub.site, "CAB-Z", Kind.COMMAND)), b"", None))
    assert hub.dropped("topic") == before + 3

    before = hub.dropped("misplaced")
    async with hub.cabinet("CAB-M") as cab:
        await cab.birth()
        await online(hub, "CAB-M")
    status = encode(
        device_pb2.DeviceStatus(
            state=device_pb2.DeviceStatus.STATE_ONLINE, boot_count=9, ts_ms=1_800_000_000_000
        )
    )
    # The same device id claiming another site (as a misconfigured or hostile device would).
    await ingest.handle(Inbound(str(Topic("elsewhere", "CAB-M", Kind.STATUS)), status, None))
    assert hub.dropped("misplaced") == before + 1


async def test_compartments_come_from_the_operator_not_from_a_birth(hub: HubHarness) -> None:
    """A later birth with more compartments adds none (an alarm says so); the operator's
    provisioning does, and the next birth confirms it."""
    async with hub.cabinet("CAB-G") as cab:
        await cab.birth()
        await online(hub, "CAB-G")
        await cab.event(door_changed=device_pb2.DoorChanged(compartment_id="A01", open=True))
        before = hub.dropped("unknown_compartment")
        await cab.event(door_changed=device_pb2.DoorChanged(compartment_id="N01", open=True))
        await dropped_once(hub, "unknown_compartment", before)

        extra = (
            "N01",
            common_pb2.SIZE_CLASS_M,
            (190, 380, 640),
            common_pb2.TEMPERATURE_ZONE_AMBIENT,
        )
        await cab.birth((*LAYOUT, extra))

        async def mismatch() -> list[Any]:
            return await hub.sql(
                "SELECT detail FROM alarms WHERE device = 'CAB-G' AND kind = 'layout_mismatch' "
                "AND status = 'raised'"
            )

        assert await eventually(mismatch) == [("1 unprovisioned (N01)",)]
        await cab.event(door_changed=device_pb2.DoorChanged(compartment_id="N01", open=True))
        await dropped_once(hub, "unknown_compartment", before + 1)
        assert await hub.sql("SELECT COUNT(*) FROM compartments WHERE device = 'CAB-G'") == [(4,)]

        # The operator provisions the new compartment; the next birth confirms the layout.
        await hub.app.inventory.provision(
            [inventory_entry("CAB-G", hub.site, layout=(*LAYOUT, extra))]
        )
        await cab.birth((*LAYOUT, extra))
        await eventually(lambda: _none(mismatch))
        await cab.event(
            door_changed=device_pb2.DoorChanged(compartment_id="N01", open=True, commanded=True)
        )

        async def opened() -> bool:
            rows = await hub.sql(
                "SELECT door_open, confirmed FROM compartments "
                "WHERE device = 'CAB-G' AND id = 'N01'"
            )
            return rows == [(1, 1)]

        await eventually(opened, timeout=30)
        assert hub.dropped("unknown_compartment") == before + 2


async def _none(query: Any) -> bool:
    return not await query()
