"""Issue 15, notice before interruption: maintenance windows reach partners in advance; outages
the hub detects (broker down, a site offline) become incidents with start, end and cause."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest

from hub.errors import ConfigError
from hub.partners.notices import Incidents
from hub.settings import PartnerSettings, SiteSettings
from hub.store import Store
from hub.store.repo import devices as devices_repo
from hub.store.repo import partners as repo
from lockerhub.clock import ManualClock
from lockerhub.v1 import carriers_pb2, carriers_pb2_grpc, partners_pb2, partners_pb2_grpc
from tests.hub.conftest import HubHarness, eventually, running_hub, settings_for, tick
from tests.hub.test_flow import online
from tests.hub.test_partner_feed import events, raw_watch, take

HOUR_MS = 3_600_000
K = partners_pb2


def compliance(hub: HubHarness) -> partners_pb2_grpc.ComplianceServiceStub:
    return partners_pb2_grpc.ComplianceServiceStub(hub.channel)


async def partner(hub: HubHarness) -> str:
    """A partner of carrier SF (registered first: a partner names registered carriers only)."""
    await carriers_pb2_grpc.CarrierServiceStub(hub.channel).RegisterCarrier(
        carriers_pb2.RegisterCarrierRequest(carrier_id="SF", name="SF")
    )
    resp = await compliance(hub).CreatePartner(
        K.CreatePartnerRequest(partner_id="shop", name="Shop", carrier_ids=["SF"])
    )
    return resp.secret


async def test_a_maintenance_notice_reaches_a_partner_before_the_stop(
    tmp_path: Path, mosquitto: Any, site: str
) -> None:
    clock = ManualClock()
    settings = settings_for(tmp_path, mosquitto, site)
    async with running_hub(settings, tmp_path, mosquitto, clock=clock) as hub:
        secret = await partner(hub)
        reader = asyncio.create_task(take(raw_watch(hub, secret, ""), 2))
        await asyncio.sleep(0.3)  # subscribed before the window is scheduled
        starts = clock.now_ms() + 25 * HOUR_MS
        window = await compliance(hub).ScheduleMaintenance(
            K.ScheduleMaintenanceRequest(
                site=hub.site, starts_ms=starts, ends_ms=starts + 2 * HOUR_MS, reason="firmware"
            )
        )
        assert (window.scheduled_by, window.cancelled) == ("operator", False)
        await tick(clock, HOUR_MS)
        await compliance(hub).CancelMaintenance(
            K.CancelMaintenanceRequest(window_id=window.window_id)
        )
        scheduled, cancelled = events(await reader)
        assert scheduled.notice.kind == K.NOTICE_KIND_MAINTENANCE_SCHEDULED
        assert (scheduled.notice.site, scheduled.notice.detail) == (hub.site, "firmware")
        assert scheduled.notice.ref == f"maintenance:{window.window_id}"
        assert (scheduled.notice.starts_ms, scheduled.notice.ends_ms) == (
            starts,
            starts + 2 * HOUR_MS,
        )
        # Told 25 h before the stop (the clock says when the partner had it).
        assert starts - scheduled.ts_ms == 25 * HOUR_MS
        assert cancelled.notice.kind == K.NOTICE_KIND_MAINTENANCE_CANCELLED
        assert cancelled.ts_ms < starts
        listed = await compliance(hub).ListMaintenance(K.ListMaintenanceRequest())
        assert [(w.window_id, w.cancelled) for w in listed.windows] == [(window.window_id, True)]

        now = clock.now_ms()
        bad = [
            (now + HOUR_MS, now + 2 * HOUR_MS, hub.site, "less than 24 h of notice"),
            (now + 30 * HOUR_MS, now + 29 * HOUR_MS, hub.site, "ends before it starts"),
            (now + 30 * HOUR_MS, now + 200 * HOUR_MS, hub.site, "longer than 72 h"),
            (-1, now + 30 * HOUR_MS, hub.site, "negative"),
            (now + 30 * HOUR_MS, 2**62, hub.site, "after 2100"),
            (now + 30 * HOUR_MS, now + 31 * HOUR_MS, "../#", "bad site id"),
        ]
        for starts_ms, ends_ms, where, why in bad:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await compliance(hub).ScheduleMaintenance(
                    K.ScheduleMaintenanceRequest(
                        site=where, starts_ms=starts_ms, ends_ms=ends_ms, reason="x"
                    )
                )
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, why
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await compliance(hub).ScheduleMaintenance(
                K.ScheduleMaintenanceRequest(
                    site="nowhere",
                    starts_ms=now + 30 * HOUR_MS,
                    ends_ms=now + 31 * HOUR_MS,
                    reason="x",
                )
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        for window_id, code in (
            ("abc", grpc.StatusCode.INVALID_ARGUMENT),
            ("9" * 40, grpc.StatusCode.INVALID_ARGUMENT),
            ("999", grpc.StatusCode.NOT_FOUND),
            (window.window_id, grpc.StatusCode.FAILED_PRECONDITION),  # already cancelled
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await compliance(hub).CancelMaintenance(
                    K.CancelMaintenanceRequest(window_id=window_id)
                )
            assert err.value.code() == code, window_id


async def test_a_broker_outage_is_an_incident_with_its_duration(
    tmp_path: Path, own_mosquitto: Any, site: str
) -> None:
    clock = ManualClock()
    settings = settings_for(tmp_path, own_mosquitto, site)
    async with running_hub(settings, tmp_path, own_mosquitto, clock=clock) as hub:
        secret = await partner(hub)
        reader = asyncio.create_task(take(raw_watch(hub, secret, ""), 2, timeout=30))
        await asyncio.sleep(0.3)
        assert hub.app.link_up
        await own_mosquitto.astop()
        await eventually(lambda: asyncio.sleep(0, not hub.app.link_up))
        await tick(clock, 200)  # the health loop sees the link down
        down_at = clock.now_ms()
        (incident,) = (await compliance(hub).ListIncidents(K.ListIncidentsRequest())).incidents
        assert (incident.cause, incident.site, incident.started_ms, incident.ended_ms) == (
            "broker_down",
            "",
            down_at,
            0,
        )
        await tick(clock, 90_000)  # a minute and a half without a broker
        await own_mosquitto.astart()
        await eventually(lambda: asyncio.sleep(0, hub.app.link_up), timeout=15)
        await tick(clock, 200)
        up_at = clock.now_ms()
        (incident,) = (await compliance(hub).ListIncidents(K.ListIncidentsRequest())).incidents
        assert incident.ended_ms - incident.started_ms == up_at - down_at == 90_200
        started, ended = events(await reader)
        assert started.notice.kind == K.NOTICE_KIND_INCIDENT_STARTED
        assert (started.notice.detail, started.notice.starts_ms) == ("broker_down", down_at)
        assert started.notice.ends_ms == 0
        assert ended.notice.kind == K.NOTICE_KIND_INCIDENT_ENDED
        assert (ended.notice.starts_ms, ended.notice.ends_ms) == (down_at, up_at)
        # Incidents are listed by period: this one overlaps the hour around it only.
        none = await compliance(hub).ListIncidents(
            K.ListIncidentsRequest(from_ms=up_at + 1, to_ms=up_at + HOUR_MS)
        )
        assert list(none.incidents) == []


async def test_a_site_with_every_cabinet_offline_is_an_incident(
    tmp_path: Path, mosquitto: Any, site: str
) -> None:
    clock = ManualClock()
    settings = settings_for(tmp_path, mosquitto, site, partners={"site_offline_after_s": 60})
    async with running_hub(settings, tmp_path, mosquitto, clock=clock) as hub:
        secret = await partner(hub)
        async with hub.cabinet("CAB-1") as cab:
            await cab.birth()
            await online(hub, "CAB-1")
            await tick(clock, 200)
            assert not (await compliance(hub).ListIncidents(K.ListIncidentsRequest())).incidents
            await cab.offline(cab.boot_count)
            await eventually(lambda: _offline(hub))
            await tick(clock, 200)
            gone_at = clock.now_ms()
            await tick(clock, 59_000)  # not yet: a reboot is no incident
            assert not (await compliance(hub).ListIncidents(K.ListIncidentsRequest())).incidents
            await tick(clock, 1_000)
            (incident,) = (await compliance(hub).ListIncidents(K.ListIncidentsRequest())).incidents
            assert (incident.cause, incident.site) == ("site_offline", hub.site)
            assert (incident.started_ms, incident.ended_ms) == (gone_at, 0)
            await cab.birth()
            await online(hub, "CAB-1")
            await tick(clock, 200)
            (incident,) = (await compliance(hub).ListIncidents(K.ListIncidentsRequest())).incidents
            assert incident.ended_ms == clock.now_ms()
        notices = events(await take(raw_watch(hub, secret, "0"), 2))
        assert [n.notice.kind for n in notices] == [
            K.NOTICE_KIND_INCIDENT_STARTED,
            K.NOTICE_KIND_INCIDENT_ENDED,
        ]
        assert {n.notice.site for n in notices} == {hub.site}


async def _offline(hub: HubHarness) -> bool:
    return await hub.sql("SELECT online FROM devices WHERE id = 'CAB-1'") == [(0,)]


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"min_notice_h": -1}, "partners.min_notice_h"),
        ({"max_window_h": 0}, "partners.max_window_h"),
        ({"site_offline_after_s": -1}, "partners.site_offline_after_s"),
    ],
)
def test_partner_settings_name_the_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        PartnerSettings(**raw)


async def test_a_store_outage_is_recorded_when_the_store_answers_again(tmp_path: Path) -> None:
    """While the store is down nothing can be written: start and end are recorded after it."""
    clock = ManualClock()
    settings = PartnerSettings()
    async with Store(tmp_path / "hub.db") as store:
        incidents = Incidents(store, clock, settings)
        await incidents.observe(store_up=True, link_up=True)
        async with store.read() as tx:
            assert await repo.last_journal_id(tx) == 0  # nothing happened: nothing written
        down_at = clock.now_ms()
        await incidents.observe(store_up=False, link_up=False)
        clock.advance(5_000)
        await incidents.observe(store_up=False, link_up=False)
        clock.advance(1_000)
        await incidents.observe(store_up=True, link_up=False)  # store back, broker still down
        rows = await incidents.list(0, 0)
        assert [(r.cause, r.started_ms, r.ended_ms) for r in rows] == [
            ("store_down", down_at, down_at + 6_000),
            ("broker_down", down_at, 0),  # first seen while the store was down
        ]
        # A new run (a restart) picks the open incident up and ends it when the broker is back.
        again = Incidents(store, clock, settings)
        clock.advance(2_000)
        await again.observe(store_up=True, link_up=True)
        rows = await again.list(0, 0)
        assert [(r.cause, r.ended_ms) for r in rows] == [
            ("store_down", down_at + 6_000),
            ("broker_down", down_at + 8_000),
        ]
        async with store.read() as tx:
            journal = await tx.fetchall("SELECT kind, ref, state FROM live_events ORDER BY id")
        assert [tuple(r) for r in journal] == [
            ("notice", f"incident:{rows[0].id}", "incident_started"),
            ("notice", f"incident:{rows[0].id}", "incident_ended"),
            ("notice", f"incident:{rows[1].id}", "incident_started"),
            ("notice", f"incident:{rows[1].id}", "incident_ended"),
        ]


async def test_a_site_back_within_its_grace_is_no_incident(tmp_path: Path) -> None:
    clock = ManualClock()
    async with Store(tmp_path / "hub.db") as store:
        async with store.transaction() as tx:
            await devices_repo.upsert_sites(tx, [SiteSettings(id="S1")])
            await devices_repo.register_device(tx, "CAB-1", "S1", "cabinet", clock.now_ms())

        async def set_online(value: int) -> None:
            async with store.transaction() as tx:
                await tx.execute("UPDATE devices SET online = ? WHERE id = 'CAB-1'", (value,))

        incidents = Incidents(store, clock, PartnerSettings(site_offline_after_s=60))
        await incidents.observe(store_up=True, link_up=True)  # offline: the grace starts
        clock.advance(59_000)
        await set_online(1)
        await incidents.observe(store_up=True, link_up=True)  # back in time
        await set_online(0)
        clock.advance(30_000)
        await incidents.observe(store_up=True, link_up=True)  # a new grace, from now
        clock.advance(59_999)
        await incidents.observe(store_up=True, link_up=True)
        assert await incidents.list(0, 0) == []
        async with store.read() as tx:
            assert await repo.last_journal_id(tx) == 0
        clock.advance(1)
        await incidents.observe(store_up=True, link_up=True)
        (row,) = await incidents.list(0, 0)
        assert (row.cause, row.site, row.started_ms) == (
            "site_offline",
            "S1",
            clock.now_ms() - 60_000,
        )
