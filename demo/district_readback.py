"""Reading a simulated day back from the hub: alarms live, then parcels and meters via gRPC."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc

from demo.district_spec import DayRecord
from lockerhub.v1 import common_pb2, dispatch_pb2, dispatch_pb2_grpc, fleet_pb2, fleet_pb2_grpc


async def watch_alarms(channel: grpc.aio.Channel, record: DayRecord) -> None:
    """Alarms as they happen (parcels are read whole at the end)."""
    stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
    async for e in stub.WatchEvents(dispatch_pb2.WatchEventsRequest()):
        if e.WhichOneof("body") == "alarm":
            kind = common_pb2.AlarmKind.Name(e.alarm.kind).removeprefix("ALARM_KIND_").lower()
            record.alarms.append(
                {
                    "ts_ms": e.ts_ms,
                    "kind": kind,
                    "site": e.alarm.site,
                    "device": e.alarm.device_id,
                    "status": e.alarm.status,
                }
            )


async def energy_by_site(channel: grpc.aio.Channel, cabinets: dict[str, str]) -> dict[str, float]:
    fleet = fleet_pb2_grpc.FleetServiceStub(channel)
    listed = await fleet.ListCabinets(fleet_pb2.ListCabinetsRequest(), timeout=30)
    out: dict[str, float] = {}
    for c in listed.cabinets:
        site = cabinets.get(c.cabinet_id, c.site)
        out[site] = out.get(site, 0.0) + c.energy_wh
    return out


async def all_parcels(channel: grpc.aio.Channel) -> list[dict[str, Any]]:
    stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
    out: list[dict[str, Any]] = []
    token = ""
    while True:
        page = await stub.ListParcels(
            dispatch_pb2.ListParcelsRequest(page_size=500, page_token=token), timeout=60
        )
        for p in page.parcels:
            full = (
                p
                if p.history
                else await stub.GetParcel(
                    dispatch_pb2.GetParcelRequest(parcel_id=p.parcel_id), timeout=30
                )
            )
            out.append(
                {
                    "id": full.parcel_id,
                    "site": full.destination_site,
                    "cabinet": full.cabinet_id,
                    "state": common_pb2.ParcelState.Name(full.state)
                    .removeprefix("PARCEL_STATE_")
                    .lower(),
                    "ewaybill": full.electronic_waybill,
                    "reusable": full.reusable_container,
                    "history": [
                        (
                            common_pb2.ParcelState.Name(t.state)
                            .removeprefix("PARCEL_STATE_")
                            .lower(),
                            t.ts_ms,
                        )
                        for t in full.history
                    ],
                }
            )
        token = page.next_page_token
        if not token:
            return out


# After the day, before the read-back: the agents' outboxes may drain this long, then the hub's
# own queue gets a moment (events of the day's last minutes were still on their way).
_SETTLE_S = 60.0
_HUB_QUEUE_S = 2.0


async def settle(outbox_depth: Callable[[], int]) -> None:
    """Let the day's last events reach the hub before it is read back (``outbox_depth``: what
    the agents still have to send)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _SETTLE_S
    while outbox_depth() and loop.time() < deadline:  # noqa: ASYNC110 - polled, no event to wait on
        await asyncio.sleep(0.5)
    await asyncio.sleep(_HUB_QUEUE_S)
