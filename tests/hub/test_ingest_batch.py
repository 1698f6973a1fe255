"""A batch applied whole (hub.ingest.ledger.BatchLedger) ends exactly where the same messages
applied one by one in savepoints end; a late refusal sends the batch down the savepoint path;
holes in a device's sequence are asked back after ``cluster.resend_grace_s`` when one is set."""

from __future__ import annotations

import time
from typing import Any

import pytest

from hub.devices.gaps import holes
from hub.ingest import pipeline
from hub.mqtt.link import Inbound
from lockerhub.codec import encode
from lockerhub.topics import Kind, Topic
from lockerhub.v1 import common_pb2, device_pb2
from tests.hub.conftest import HubHarness, eventually, running_hub, settings_for
from tests.hub.test_flow import online
from tests.hub.test_lifecycle import commands_until


@pytest.fixture
async def hub(any_store_hub: HubHarness) -> HubHarness:
    return any_store_hub


def test_holes_finds_the_lowest_and_highest_missing_seq() -> None:
    assert holes([], 2, 4) == (2, 4)
    assert holes([2, 3, 4], 2, 4) is None
    assert holes([2, 4], 2, 4) == (3, 3)
    assert holes([3, 4, 7], 2, 8) == (2, 8)
    assert holes([2, 3, 5, 8], 2, 8) == (4, 7)
    assert holes([5], 5, 5) is None


def _messages(hub: HubHarness, device: str, cab: Any) -> list[Inbound]:
    """Door changes, a redelivery inside the batch, a replay of an applied event, a hole, a
    cabinet_offline alarm raised and cleared by the next event, telemetry."""
    door = device_pb2.DoorChanged(compartment_id="A01", open=True, commanded=True)
    shut = device_pb2.DoorChanged(compartment_id="A01", open=False, commanded=True)
    events = [cab.make_event(door_changed=door), cab.make_event(door_changed=shut)]
    events.append(events[1])  # redelivered within the batch
    cab.seq += 2  # a hole of two
    offline = common_pb2.ALARM_KIND_CABINET_OFFLINE
    events.append(cab.make_event(alarm=device_pb2.AlarmRaised(kind=offline, active=True)))
    events.append(cab.make_event(door_changed=door))
    out = [Inbound(str(Topic(hub.site, device, Kind.EVENT)), encode(e), None) for e in events]
    # The sample (door shut) comes after the last door event (open): the sample's state stays.
    shut_now = device_pb2.CompartmentStatus(compartment_id="A01", door_open=False)
    sample = device_pb2.Telemetry(
        ts_ms=events[0].ts_ms, energy_wh=5.0, power_w=3.0, compartments=[shut_now]
    )
    out.append(Inbound(str(Topic(hub.site, device, Kind.TELEMETRY)), encode(sample), None))
    return out


async def _state(hub: HubHarness, device: str) -> dict[str, Any]:
    return {
        "ledger": await hub.sql(
            "SELECT seq, type FROM device_events WHERE device = ? ORDER BY seq", (device,)
        ),
        "device": await hub.sql(
            "SELECT last_seq, resend_requested_to, energy_wh FROM devices WHERE id = ?", (device,)
        ),
        "doors": await hub.sql(
            "SELECT id, door_open FROM compartments WHERE device = ? ORDER BY id", (device,)
        ),
        "alarms": await hub.sql(
            "SELECT kind, status FROM alarms WHERE device = ? ORDER BY id", (device,)
        ),
        "commands": len(await hub.sql("SELECT id FROM commands WHERE device = ?", (device,))),
    }


async def test_whole_batch_ends_where_the_savepoint_path_ends(hub: HubHarness) -> None:
    ingestor = hub.app.ingestor
    for device in ("CAB-W", "CAB-S"):
        async with hub.cabinet(device) as cab:
            await cab.birth()
            await online(hub, device)
            await cab.event(door_changed=device_pb2.DoorChanged(compartment_id="A01"))  # seq 1

            async def first_applied(device: str = device) -> bool:
                query = "SELECT COUNT(*) FROM device_events WHERE device = ?"
                return await hub.sql(query, (device,)) == [(1,)]

            await eventually(first_applied)
            batch = _messages(hub, device, cab)
            if device == "CAB-S":
                ingestor._slow_batches = 1  # this one batch in savepoints
            duplicates = hub.dropped("duplicate")
            await ingestor.handle_batch(batch)
            assert hub.dropped("duplicate") == duplicates + 1
            assert ingestor._slow_batches == 0  # nothing sent it down the savepoint path
    whole, one_by_one = await _state(hub, "CAB-W"), await _state(hub, "CAB-S")
    assert whole == one_by_one
    assert [seq for seq, _ in whole["ledger"]] == [1, 2, 3, 6, 7]
    assert whole["alarms"] == [("cabinet_offline", "cleared")]
    assert ("A01", 0) in whole["doors"]
    assert whole["device"][0][:2] == (7, 5)  # a ResendEvents for 4-5 was asked


async def test_a_refusal_after_a_write_redoes_the_batch_in_savepoints(hub: HubHarness) -> None:
    ingestor = hub.app.ingestor
    async with hub.cabinet("CAB-R") as cab:
        await cab.birth()
        await online(hub, "CAB-R")
        good = cab.make_event(door_changed=device_pb2.DoorChanged(compartment_id="A01"))
        # Refused after its ledger row: the compartment is checked after the bookkeeping.
        bad = cab.make_event(door_changed=device_pb2.DoorChanged(compartment_id="Z99"))
        after = cab.make_event(door_changed=device_pb2.DoorChanged(compartment_id="A01"))
        topic = str(Topic(hub.site, "CAB-R", Kind.EVENT))
        refused = hub.dropped("unknown_compartment")
        await ingestor.handle_batch([Inbound(topic, encode(e), None) for e in (good, bad, after)])
    assert hub.dropped("unknown_compartment") == refused + 1
    # Sent down the savepoint path (other batches may have come through meanwhile).
    assert 0 < ingestor._slow_batches <= pipeline._SLOW_AFTER_REDO
    rows = await hub.sql("SELECT seq FROM device_events WHERE device = 'CAB-R' ORDER BY seq")
    assert rows == [(1,), (3,)]  # the refused event left nothing behind


async def test_a_hole_is_asked_back_only_after_the_grace(
    tmp_path: Any, mosquitto: Any, site: str
) -> None:
    settings = settings_for(
        tmp_path,
        mosquitto,
        site,
        cluster={"resend_grace_s": 0.5},
        lifecycle={"sweep_interval_s": 0.1},
    )
    async with running_hub(settings, tmp_path, mosquitto) as hub, hub.cabinet("CAB-G") as cab:
        await cab.birth()
        await online(hub, "CAB-G")
        door = device_pb2.DoorChanged(compartment_id="A01", open=False, commanded=True)
        await cab.event(door_changed=door)  # seq 1
        cab.seq = 2
        await cab.event(door_changed=door)  # seq 3, as if another hub still held seq 2

        async def ledger(rows: int) -> bool:
            found = await hub.sql("SELECT COUNT(*) FROM device_events WHERE device = 'CAB-G'")
            return found == [(rows,)]

        await eventually(lambda: ledger(2))
        mark = "SELECT gap_from, gap_since_ms > 0 FROM devices WHERE id = 'CAB-G'"
        assert await hub.sql(mark) == [(2, 1)]  # marked, not asked
        late = cab.make_event(door_changed=door)
        late.seq = 2
        await cab.send_event(late)  # seq 2 arrives within the grace: nothing to ask
        await eventually(lambda: ledger(3))

        async def swept() -> bool:
            return await hub.sql(mark) == [(2, 0)]

        await eventually(swept)
        assert await hub.sql("SELECT COUNT(*) FROM commands WHERE device = 'CAB-G'") == [(0,)]
        cab.seq = 6
        await cab.event(door_changed=door)  # seq 7: 4-6 missing for good
        resend = await commands_until(cab, "resend_events")
        assert (resend.resend_events.from_seq, resend.resend_events.to_seq) == (4, 6)


async def test_a_lost_last_event_is_found_from_the_next_telemetry(
    tmp_path: Any, mosquitto: Any, site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker took events 2 and 3 and delivered 3 only (a restart's loss): the sample saying
    the device assigned up to 3 makes the sweeper ask for 2 once the wait is over; a sample while
    the outbox still holds events asks nothing."""
    monkeypatch.setattr("hub.devices.gaps.REPORTED_WAIT_MS", 300)
    settings = settings_for(tmp_path, mosquitto, site, lifecycle={"sweep_interval_s": 0.1})
    async with running_hub(settings, tmp_path, mosquitto) as hub, hub.cabinet("CAB-T") as cab:
        await cab.birth()
        await online(hub, "CAB-T")
        door = device_pb2.DoorChanged(compartment_id="A01", open=False, commanded=True)
        await cab.event(door_changed=door)  # seq 1 arrives; seq 2 is lost
        cab.seq = 2

        async def sample(last_seq: int, outbox_depth: int) -> None:
            telemetry = device_pb2.Telemetry(
                ts_ms=int(time.time() * 1000),
                last_seq=last_seq,
                outbox_depth=outbox_depth,
                energy_wh=1.0,
            )
            await cab.publish(Kind.TELEMETRY, encode(telemetry))

        await sample(last_seq=2, outbox_depth=1)  # still sending: nothing to suspect

        async def sample_applied() -> bool:
            query = "SELECT energy_wh, last_seq FROM devices WHERE id = 'CAB-T'"
            return await hub.sql(query) == [(1.0, 1)]

        await eventually(sample_applied)
        await sample(last_seq=2, outbox_depth=0)

        async def marked() -> bool:
            query = "SELECT last_seq, gap_from FROM devices WHERE id = 'CAB-T'"
            return await hub.sql(query) == [(2, 2)]

        await eventually(marked)
        resend = await commands_until(cab, "resend_events")
        assert (resend.resend_events.from_seq, resend.resend_events.to_seq) == (2, 2)
        # The resent event is applied (below the highest seen: looked up, not refused).
        again = cab.make_event(door_changed=door)
        again.seq = 2
        await cab.send_event(again)

        async def applied() -> bool:
            query = "SELECT COUNT(*) FROM device_events WHERE device = 'CAB-T'"
            return await hub.sql(query) == [(2,)]

        await eventually(applied)
