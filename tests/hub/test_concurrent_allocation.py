"""Two hubs on one database announce for the same site at the same moment: no compartment is
ever given twice. Checked from the database, on both back ends (two SQLite stores on one file
serialise on its write lock; on PostgreSQL the site's advisory lock does it)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from hub.settings import CompartmentSettings, DeviceInventorySettings
from lockerhub.v1 import dispatch_pb2
from tests.hub.conftest import HubHarness, running_hub, settings_for
from tests.hub.test_flow import announcement

PER_CABINET = 250
BATCH = 50


def _cabinets(site: str, total: int) -> list[DeviceInventorySettings]:
    return [
        DeviceInventorySettings(
            id=f"{site}-CAB{c:03d}",
            site=site,
            kind="cabinet",
            compartments=tuple(
                CompartmentSettings(
                    id=f"C{i:04d}", size="M", width_mm=190, height_mm=380, depth_mm=640
                )
                for i in range(PER_CABINET)
            ),
        )
        for c in range((total + PER_CABINET - 1) // PER_CABINET)
    ]


async def _announce_all(hub: HubHarness, ids: list[str]) -> list[dispatch_pb2.AnnounceOutcome]:
    outcomes = []
    for start in range(0, len(ids), BATCH):
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(
                parcels=[announcement(p, hub.site) for p in ids[start : start + BATCH]]
            ),
            timeout=120,
        )
        outcomes.extend(resp.outcomes)
    return outcomes


async def _two_hubs_announce(
    tmp_path: Path, mosquitto: Any, site: str, store_target: Path | str, total: int
) -> None:
    storage = {"url": store_target} if isinstance(store_target, str) else {}
    storage.setdefault("path", str(tmp_path / "shared.db"))
    a = settings_for(tmp_path / "a", mosquitto, site, storage=storage)
    b = settings_for(tmp_path / "b", mosquitto, site, storage=storage)
    for d in (tmp_path / "a", tmp_path / "b"):
        d.mkdir()
    async with running_hub(a, tmp_path / "a", mosquitto) as hub_a:
        await hub_a.app.inventory.provision(_cabinets(site, total))
        async with hub_a.app.store.transaction() as tx:  # what the cabinets' births would say
            await tx.execute("UPDATE devices SET online = 1")
            await tx.execute("UPDATE compartments SET confirmed = 1 WHERE provisioned = 1")
        async with running_hub(b, tmp_path / "b", mosquitto) as hub_b:
            # Exactly as many compartments as parcels: a compartment given twice would leave
            # a parcel without one (or two parcels in one).
            ids = [f"P{i:06d}" for i in range(total)]
            out_a, out_b = await asyncio.gather(
                _announce_all(hub_a, ids[0::2]), _announce_all(hub_b, ids[1::2])
            )
            rows = await hub_a.sql(
                "SELECT p.device, p.compartment, p.id, c.parcel_id, c.state FROM parcels p "
                "LEFT JOIN compartments c ON c.device = p.device AND c.id = p.compartment"
            )
            reserved = await hub_a.sql("SELECT COUNT(*) FROM compartments WHERE state = 'reserved'")
            twice = await hub_a.sql(
                "SELECT device, compartment FROM parcels WHERE device IS NOT NULL "
                "GROUP BY device, compartment HAVING COUNT(*) > 1"
            )
            commands = await hub_a.sql(
                "SELECT COUNT(*) FROM commands WHERE type = 'reserve_compartment'"
            )
    outcomes = [*out_a, *out_b]
    assert len(outcomes) == total
    assert all(o.accepted for o in outcomes), {o.reason for o in outcomes if not o.accepted}
    given = {(o.cabinet_id, o.compartment_id) for o in outcomes}
    assert len(given) == total  # as answered to the callers
    assert twice == []  # as stored
    assert len(rows) == total
    assert all(
        device and parcel == pid and state == "reserved" for device, _, pid, parcel, state in rows
    )
    assert reserved == [(total,)]
    assert commands == [(total,)]


async def test_two_hubs_never_give_a_compartment_twice(
    tmp_path: Path, mosquitto: Any, site: str, store_target: Path | str
) -> None:
    await _two_hubs_announce(tmp_path, mosquitto, site, store_target, 1_000)


@pytest.mark.slow
async def test_two_hubs_never_give_a_compartment_twice_10k(
    tmp_path: Path, mosquitto: Any, site: str, store_target: Path | str
) -> None:
    await _two_hubs_announce(tmp_path, mosquitto, site, store_target, 10_000)
