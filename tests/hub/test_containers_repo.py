"""Issue 13: container losses, the planner's empty-container pickups and the share counters, on a
real SQLite store (portable SQL: no SQLite date functions)."""

from __future__ import annotations

from pathlib import Path

from hub.store import Store
from hub.store.repo import containers as repo
from hub.store.repo.containers import ContainerRow

DAY_MS = 86_400_000


def _row(cid: str, state: str, site: str, vehicle: str = "") -> ContainerRow:
    return ContainerRow(cid, "cage", state, site, vehicle, "HUB", 0, 0)


async def test_losses_pickups_and_share(tmp_path: Path) -> None:
    async with Store(tmp_path / "hub.db") as store:
        async with store.transaction() as tx:
            await repo.put(tx, _row("C-HUB", "at_hub", "HUB"), now_ms=1 * DAY_MS)
            await repo.put(tx, _row("C-OLD", "empty_at_site", "S1"), now_ms=1 * DAY_MS)
            await repo.put(tx, _row("C-NEW", "empty_at_site", "S1"), now_ms=20 * DAY_MS)
            await repo.put(tx, _row("C-S2", "empty_at_site", "S2"), now_ms=20 * DAY_MS)
            await repo.put(tx, _row("C-VAN", "loaded", "", "V1"), now_ms=2 * DAY_MS)
            await repo.count_share(tx, "S1", sorted_=3)
            await repo.count_share(tx, "S1", contained=2)
            await repo.count_share(tx, "S2", sorted_=1)
        async with store.read() as tx:
            # Away from the hub and not seen for 14 days at day 21: C-OLD and C-VAN; the one
            # waiting at the hub is never lost.
            assert await repo.lost(tx, 21 * DAY_MS - 14 * DAY_MS) == 2
            assert await repo.lost(tx, 0) == 0
            assert await repo.empty_containers_by_site(tx) == {
                "S1": [("C-NEW", "cage"), ("C-OLD", "cage")],
                "S2": [("C-S2", "cage")],
            }
            assert await repo.share(tx) == {"S1": (2, 3), "S2": (0, 1)}
            assert await repo.by_state(tx) == {
                ("at_hub", "HUB"): 1,
                ("empty_at_site", "S1"): 2,
                ("empty_at_site", "S2"): 1,
                ("loaded", ""): 1,
            }
        # A later sighting updates the place and the time, never the first sighting.
        async with store.transaction() as tx:
            await repo.put(tx, _row("C-OLD", "loaded", "", "V2"), now_ms=21 * DAY_MS)
        async with store.read() as tx:
            got = await repo.get(tx, "C-OLD")
            assert got is not None
            assert (got.state, got.vehicle, got.last_seen_ms) == ("loaded", "V2", 21 * DAY_MS)
            first = await tx.fetchone("SELECT first_seen_ms FROM containers WHERE id = 'C-OLD'")
            assert first is not None
            assert first[0] == DAY_MS
