"""Alarms (device and hub-side, acknowledge/clear), sites, and the resumable live event stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from lockerhub.clock import ManualClock
from lockerhub.codec import encode
from lockerhub.topics import Kind
from lockerhub.v1 import common_pb2, device_pb2, dispatch_pb2, fleet_pb2
from tests.hub.cabinet import inventory_entry
from tests.hub.conftest import HubHarness, eventually, running_hub, settings_for
from tests.hub.test_flow import announcement, online


@pytest.fixture
def hub(any_store_hub: HubHarness) -> HubHarness:
    """Alarms and the WatchEvents journal on SQLite and on PostgreSQL."""
    return any_store_hub


async def open_alarms(hub: HubHarness, kind: int | None = None) -> list[fleet_pb2.Alarm]:
    resp = await hub.fleet.ListAlarms(fleet_pb2.ListAlarmsRequest(site=hub.site))
    return [a for a in resp.alarms if kind is None or a.kind == kind]


async def test_device_alarm_acknowledge_and_clear(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        await cab.event(
            door_changed=device_pb2.DoorChanged(compartment_id="A01", open=True, commanded=False)
        )
        # The same condition reported twice is one open alarm.
        await cab.event(
            door_changed=device_pb2.DoorChanged(compartment_id="A01", open=True, commanded=False)
        )
        (forced,) = await eventually(lambda: open_alarms(hub, common_pb2.ALARM_KIND_DOOR_FORCED))
        assert (forced.device_id, forced.compartment_id, forced.status) == (
            "CAB-1",
            "A01",
            "raised",
        )

        acked = await hub.fleet.AcknowledgeAlarm(
            fleet_pb2.AlarmActionRequest(alarm_id=forced.alarm_id, note="on my way")
        )
        assert (acked.status, acked.acknowledged_by) == ("acknowledged", "operator")
        cleared = await hub.fleet.ClearAlarm(fleet_pb2.AlarmActionRequest(alarm_id=forced.alarm_id))
        assert cleared.status == "cleared"
        assert not await open_alarms(hub, common_pb2.ALARM_KIND_DOOR_FORCED)
        every = await hub.fleet.ListAlarms(
            fleet_pb2.ListAlarmsRequest(site=hub.site, include_cleared=True)
        )
        assert [a.status for a in every.alarms if a.alarm_id == forced.alarm_id] == ["cleared"]

        for alarm_id, code in (
            (forced.alarm_id, grpc.StatusCode.FAILED_PRECONDITION),  # ack a cleared alarm
            ("999999", grpc.StatusCode.NOT_FOUND),
            ("'; DROP TABLE alarms; --", grpc.StatusCode.INVALID_ARGUMENT),
            ("", grpc.StatusCode.INVALID_ARGUMENT),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await hub.fleet.AcknowledgeAlarm(fleet_pb2.AlarmActionRequest(alarm_id=alarm_id))
            assert err.value.code() == code

        # A device alarm and its own "cleared" report.
        await cab.event(
            alarm=device_pb2.AlarmRaised(
                kind=common_pb2.ALARM_KIND_TEMPERATURE_OUT_OF_RANGE,
                compartment_id="C01",
                detail="9.5 C",
                active=True,
            )
        )
        (temp,) = await eventually(
            lambda: open_alarms(hub, common_pb2.ALARM_KIND_TEMPERATURE_OUT_OF_RANGE)
        )
        assert temp.detail == "9.5 C"
        await cab.event(
            alarm=device_pb2.AlarmRaised(
                kind=common_pb2.ALARM_KIND_TEMPERATURE_OUT_OF_RANGE,
                compartment_id="C01",
                active=False,
            )
        )

        async def gone() -> bool:
            return not await open_alarms(hub, common_pb2.ALARM_KIND_TEMPERATURE_OUT_OF_RANGE)

        await eventually(gone)


async def test_offline_alarm_from_will_and_from_silence(
    tmp_path: Path, mosquitto: Any, site: str
) -> None:
    clock = ManualClock()
    settings = settings_for(
        tmp_path, mosquitto, site, lifecycle={"sweep_interval_s": 0.05, "offline_after_s": 60}
    )
    async with running_hub(settings, tmp_path, mosquitto, clock=clock) as hub:  # noqa: SIM117
        async with hub.cabinet("CAB-1") as cab:
            await cab.birth()
            await online(hub, "CAB-1")
            clock.advance(61_000)
            (alarm,) = await eventually(
                lambda: open_alarms(hub, common_pb2.ALARM_KIND_CABINET_OFFLINE)
            )
            assert "silent" in alarm.detail
            sample = device_pb2.Telemetry(ts_ms=clock.now_ms(), energy_wh=1.0)
            await cab.publish(Kind.TELEMETRY, encode(sample))

            async def gone() -> bool:
                return not await open_alarms(hub, common_pb2.ALARM_KIND_CABINET_OFFLINE)

            await eventually(gone)
            await cab.offline(cab.boot_count)  # what the broker sends as the last will
            (alarm,) = await eventually(
                lambda: open_alarms(hub, common_pb2.ALARM_KIND_CABINET_OFFLINE)
            )
            assert alarm.detail == "offline status"
            await cab.birth()
            await eventually(gone)


async def test_a_pile_is_silent_after_two_missed_heartbeats_not_a_cabinets_limit(
    tmp_path: Path, mosquitto: Any, site: str, store_target: Path | str
) -> None:
    """A pile is heard from at its OCPP heartbeat only (300 s by default, longer than the
    cabinets' 180 s silence limit): judged by a cabinet's limit, every idle pile would flap
    between silent and back at each heartbeat."""
    clock = ManualClock()
    settings = settings_for(
        tmp_path,
        mosquitto,
        site,
        lifecycle={"sweep_interval_s": 0.05, "offline_after_s": 60},
        ocpp={"heartbeat_interval_s": 100},
        storage={"url": store_target} if isinstance(store_target, str) else {},
    )
    assert settings.ocpp.silent_after_s == 230  # two heartbeats and the slack
    async with running_hub(settings, tmp_path, mosquitto, clock=clock) as hub:
        await hub.app.inventory.provision(
            [inventory_entry("PILE-1", site, device_pb2.DEVICE_KIND_CHARGING_PILE)]
        )
        async with hub.app.store.transaction() as tx:  # what the pile's BootNotification records
            await tx.execute(
                "UPDATE devices SET online = 1, last_seen_ms = ? WHERE id = 'PILE-1'",
                (clock.now_ms(),),
            )
        clock.advance(200_000)  # past the cabinets' limit, within two heartbeats
        await asyncio.sleep(0.3)  # several sweeps
        assert not await open_alarms(hub, common_pb2.ALARM_KIND_CABINET_OFFLINE)
        clock.advance(31_000)
        (alarm,) = await eventually(lambda: open_alarms(hub, common_pb2.ALARM_KIND_CABINET_OFFLINE))
        assert (alarm.device_id, alarm.detail) == ("PILE-1", "silent for more than 230 s")


async def test_list_sites(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-1", hub.site)])
        )
        resp = await hub.fleet.ListSites(fleet_pb2.ListSitesRequest())
        (s,) = resp.sites
        assert (s.site_id, s.name, s.cabinets) == (hub.site, "Test site", 1)
        assert (s.compartments_total, s.compartments_free) == (4, 3)
        assert (s.lat, s.lon) == (31.2, 121.4)


class Watcher:
    """Reads a WatchEvents stream in the background."""

    def __init__(self, hub: HubHarness, cursor: str = "", site: str = "") -> None:
        self.events: list[dispatch_pb2.LiveEvent] = []
        self._call = hub.dispatch.WatchEvents(
            dispatch_pb2.WatchEventsRequest(cursor=cursor, site=site)
        )
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self._call:
            self.events.append(event)

    async def close(self) -> None:
        self._call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task

    def parcel_states(self) -> list[tuple[str, int]]:
        return [
            (e.parcel.parcel_id, e.parcel.transition.state)
            for e in self.events
            if e.WhichOneof("body") == "parcel"
        ]


@pytest.fixture
async def watcher_factory(hub: HubHarness) -> AsyncIterator[Any]:
    made: list[Watcher] = []

    def make(**kw: Any) -> Watcher:
        made.append(Watcher(hub, **kw))
        return made[-1]

    yield make
    for w in made:
        if not w._task.done():
            await w.close()


async def test_watch_resumes_after_reconnect_without_loss_or_duplicates(
    hub: HubHarness, watcher_factory: Any
) -> None:
    S = common_pb2
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        first = watcher_factory()
        await asyncio.sleep(0.3)  # the stream starts "from now"
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(
                parcels=[announcement("P-1", hub.site), announcement("P-2", hub.site)]
            )
        )

        async def four() -> bool:
            await asyncio.sleep(0)
            return len(first.events) >= 4

        await eventually(four)
        await first.close()
        assert first.parcel_states() == [
            ("P-1", S.PARCEL_STATE_ANNOUNCED),
            ("P-1", S.PARCEL_STATE_RESERVED),
            ("P-2", S.PARCEL_STATE_ANNOUNCED),
            ("P-2", S.PARCEL_STATE_RESERVED),
        ]
        cursor = first.events[-1].cursor

        # While nobody watches: a deposit, a cancellation and an alarm.
        await cab.event(
            deposited=device_pb2.Deposited(
                parcel_id="P-1", compartment_id=resp.outcomes[0].compartment_id, courier_id="c"
            )
        )

        async def deposited() -> bool:
            p = await hub.dispatch.GetParcel(dispatch_pb2.GetParcelRequest(parcel_id="P-1"))
            return p.state == S.PARCEL_STATE_DEPOSITED

        await eventually(deposited)
        await hub.dispatch.CancelParcel(dispatch_pb2.CancelParcelRequest(parcel_id="P-2"))
        await cab.event(
            door_changed=device_pb2.DoorChanged(compartment_id="A01", open=True, commanded=False)
        )
        await eventually(lambda: open_alarms(hub))

        second = watcher_factory(cursor=cursor)

        async def three() -> bool:
            await asyncio.sleep(0)
            return len(second.events) >= 3

        await eventually(three)
        # One more change now: it arrives fourth, which proves nothing was repeated before it.
        (raised,) = await open_alarms(hub)
        await hub.fleet.AcknowledgeAlarm(fleet_pb2.AlarmActionRequest(alarm_id=raised.alarm_id))

        async def four_after() -> bool:
            await asyncio.sleep(0)
            return len(second.events) >= 4

        await eventually(four_after)
        assert len(second.events) == 4
        assert second.parcel_states() == [
            ("P-1", S.PARCEL_STATE_DEPOSITED),
            ("P-2", S.PARCEL_STATE_CANCELLED),
        ]
        alarm, acked = second.events[2:]
        assert alarm.WhichOneof("body") == "alarm"
        assert (alarm.alarm.kind, alarm.alarm.status) == (S.ALARM_KIND_DOOR_FORCED, "raised")
        assert alarm.alarm.site == hub.site
        assert (acked.alarm.alarm_id, acked.alarm.status) == (raised.alarm_id, "acknowledged")
        cursors = [int(e.cursor) for e in first.events + second.events]
        assert cursors == sorted(set(cursors))

        # Another site's filter sees none of it; a bad cursor is refused clearly.
        other = watcher_factory(cursor="0", site="elsewhere")
        await asyncio.sleep(0.3)
        assert other.events == []
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in hub.dispatch.WatchEvents(
                dispatch_pb2.WatchEventsRequest(cursor="yesterday")
            ):
                pass
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
