"""The screening-hold gauges read from a real store (SQLite and PostgreSQL) on the refresh tick:
held now and overdue by site, every known site at 0, a released hold gone, clock moved by hand."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from hub.metrics.catalogue import HubMetrics
from hub.metrics.store_collector import StoreMetrics
from hub.models import Dims, ParcelRecord, ParcelState, Zone
from hub.settings import SiteSettings
from hub.store import Store
from hub.store.repo import devices as devices_repo
from hub.store.repo import parcels as parcels_repo
from hub.store.repo import sorting as sorting_repo
from lockerhub.clock import ManualClock

HOUR_MS = 3_600_000
HUB, OTHER = "H1", "H2"


def _parcel(parcel_id: str) -> ParcelRecord:
    return ParcelRecord(
        parcel_id=parcel_id,
        state=ParcelState.ANNOUNCED,
        site=HUB,
        cabinet_id="",
        compartment_id="",
        dims=Dims(100, 100, 100),
        weight_g=500,
        zone=Zone.AMBIENT,
        phone_masked="138****0000",
        electronic_waybill=True,
        reusable_container=False,
        pickup_deadline_ms=0,
    )


async def test_holds_in_force_and_overdue(store_target: Path | str) -> None:
    clock = ManualClock()
    t0 = clock.now_ms()
    metrics = HubMetrics(CollectorRegistry())
    tick = StoreMetrics(metrics, clock=clock, hold_overdue_hours=2)
    async with Store(store_target) as store:
        async with store.transaction() as tx:
            await devices_repo.upsert_sites(tx, [SiteSettings(id=HUB), SiteSettings(id=OTHER)])
            for pid in ("P-OLD", "P-NEW", "P-FREED", "P-CLEAR"):
                await parcels_repo.insert_parcel(
                    tx, _parcel(pid), phone="13800000000", reservation_expires_ms=0, now_ms=t0
                )
            await sorting_repo.record_screening(tx, "P-OLD", HUB, "ST1", "held", "x", t0)
            await sorting_repo.record_screening(tx, "P-FREED", HUB, "ST1", "held", "x", t0)
            await sorting_repo.record_screening(tx, "P-CLEAR", HUB, "ST1", "clear", "", t0)
            assert await sorting_repo.release(tx, "P-FREED", "operator", "checked", t0 + HOUR_MS)
            new_at = t0 + 90 * 60_000
            await sorting_repo.record_screening(tx, "P-NEW", HUB, "ST1", "held", "x", new_at)

        async def gauges() -> tuple[dict[str, int], dict[str, int]]:
            async with store.read() as tx:
                await tick.refresh(tx)
            snap = metrics.sorting.holds.snapshot
            return dict(snap.held), dict(snap.overdue)

        clock.advance(2 * HOUR_MS)  # P-OLD held for 2 h: not over yet
        assert await gauges() == ({HUB: 2, OTHER: 0}, {HUB: 0, OTHER: 0})
        clock.advance(1)
        assert await gauges() == ({HUB: 2, OTHER: 0}, {HUB: 1, OTHER: 0})
        clock.advance(90 * 60_000)  # P-NEW too
        assert await gauges() == ({HUB: 2, OTHER: 0}, {HUB: 2, OTHER: 0})
        async with store.transaction() as tx:
            assert await sorting_repo.release(tx, "P-OLD", "operator", "checked", clock.now_ms())
        assert await gauges() == ({HUB: 1, OTHER: 0}, {HUB: 1, OTHER: 0})
    # Served per site, 0 included (a panel or alert on the site has a series to read).
    registry = metrics.registry
    assert registry.get_sample_value("lockerhub_screening_holds_overdue", {"site": HUB}) == 1
    assert registry.get_sample_value("lockerhub_screening_holds", {"site": OTHER}) == 0
