"""Two whole hubs (HubApp) on one store, one broker and one clock: a deposit's notice, the
reminder and the expiry are each done once, and only one hub sweeps while its lease holds."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

from lockerhub.clock import ManualClock
from lockerhub.v1 import common_pb2 as S
from tests.hub.conftest import HubHarness, eventually, running_hub, settings_for, tick
from tests.hub.test_flow import online
from tests.hub.test_lifecycle import deposit, reach

HOUR_MS = 3_600_000


async def test_two_hubs_sweep_and_notify_once(tmp_path: Path, mosquitto: Any, site: str) -> None:
    clock = ManualClock()
    group = f"g-{site}"  # both hubs in one shared-subscription group

    def hub_settings(name: str) -> Any:
        s = settings_for(
            tmp_path,
            mosquitto,
            site,
            cluster={"hub_id": name},
            commands={"default_ttl_s": 3600, "max_ttl_s": 3600},
        )
        return dataclasses.replace(s, broker=dataclasses.replace(s.broker, share_group=group))

    async with contextlib.AsyncExitStack() as stack:
        first: HubHarness = await stack.enter_async_context(
            running_hub(hub_settings("hub-a"), tmp_path, mosquitto, clock=clock)
        )
        second: HubHarness = await stack.enter_async_context(
            running_hub(hub_settings("hub-b"), tmp_path, mosquitto, clock=clock)
        )
        assert first.app.settings.broker.client_id != second.app.settings.broker.client_id
        async with first.cabinet("CAB-1") as cab:
            await cab.birth()
            await online(first, "CAB-1")
            await online(second, "CAB-1")  # presence reaches every hub (plain subscription)
            await deposit(second, cab, "P-1")  # announced on one hub, applied by either

            async def notices(kind: str) -> list[dict[str, Any]]:
                return [n for n in first.notifications() if n["kind"] == kind]

            await eventually(lambda: notices("deposited"))
            for _ in range(3):  # both hubs' outboxes and sweepers run again: nothing more
                await tick(clock, 1000)
            assert len(await notices("deposited")) == 1

            async def holder() -> list[Any]:
                return await first.sql(
                    "SELECT holder FROM job_leases WHERE name = 'lifecycle-sweeper'"
                )

            (leader,) = await eventually(holder)
            for _ in range(5):  # renewed each pass: the same hub keeps sweeping
                await tick(clock, 1000)
            assert await holder() == [leader]

            clock.advance(36 * HOUR_MS + 1)  # the reminder is due (and the lease ran out)
            await eventually(lambda: notices("reminder"))
            clock.advance(12 * HOUR_MS)
            await reach(first, "P-1", S.PARCEL_STATE_EXPIRED)
            for _ in range(5):
                await tick(clock, 1000)
            assert len(await notices("reminder")) == 1
            expired = await first.sql(
                "SELECT COUNT(*) FROM parcel_transitions WHERE state = 'expired'"
            )
            assert expired == [(1,)]
            delivered = await first.sql(
                "SELECT kind, COUNT(*), COUNT(DISTINCT claimed_by) FROM notice_outbox "
                "WHERE state = 'delivered' GROUP BY kind ORDER BY kind"
            )
            assert delivered == [("deposited", 1, 1), ("reminder", 1, 1)]
