"""Commands of one batch are published with their PUBACKs overlapping (a window in flight), and
still reach the cabinet in the order they were committed, each marked sent once."""

from __future__ import annotations

import asyncio

from lockerhub.v1 import common_pb2, dispatch_pb2
from tests.hub.conftest import HubHarness
from tests.hub.test_flow import announcement, online

PARCELS = 150  # several times the publish window
ROOMY = tuple(
    (f"R{i:03d}", common_pb2.SIZE_CLASS_M, (190, 380, 640), common_pb2.TEMPERATURE_ZONE_AMBIENT)
    for i in range(PARCELS + 10)
)


async def test_a_batch_of_reservations_arrives_in_commit_order(hub: HubHarness) -> None:
    async with hub.cabinet("CAB-ORDER", layout=ROOMY) as cab:
        await cab.birth(ROOMY)
        await online(hub, "CAB-ORDER")
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(
                parcels=[announcement(f"ORD-{i:03d}", hub.site) for i in range(PARCELS)]
            )
        )
        assert all(o.accepted for o in resp.outcomes)
        received = []
        async with asyncio.timeout(20):
            while len(received) < PARCELS:
                received.append((await cab.commands.get()).command_id)
        committed = [
            row[0]
            for row in await hub.sql(
                "SELECT id FROM commands WHERE device = ? ORDER BY rowid", ("CAB-ORDER",)
            )
        ]
        assert received == committed
        assert cab.commands.empty()

        async def all_sent() -> bool:
            rows = await hub.sql(
                "SELECT COUNT(*) FROM commands WHERE device = ? AND state = 'sent'", ("CAB-ORDER",)
            )
            return bool(rows[0][0] == PARCELS)

        async with asyncio.timeout(10):
            while not await all_sent():
                await asyncio.sleep(0.05)
