"""Broker stopped during deposits and pickups, then started: the real hub applies each event once.

mosquitto (own, stopped and restarted) <- `lockerhub hub` <- `lockerhub edge` (sim driver). The
cabinet serves the courier and the recipient from its own database while the broker is down.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.request
from pathlib import Path

import grpc

from firmware_sim.control import ControlClient
from lockerhub.v1 import common_pb2, dispatch_pb2, dispatch_pb2_grpc, fleet_pb2, fleet_pb2_grpc
from tests.e2e.test_parcel_journey import CABINET, SITE, eventually, metric, write_configs
from tests.support.broker import BrokerHandle
from tests.support.processes import Proc

PARCELS = ("OUT-1", "OUT-2", "OUT-3")


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        return db.execute(sql).fetchall()


def _announce(parcel_id: str) -> dispatch_pb2.ParcelAnnouncement:
    return dispatch_pb2.ParcelAnnouncement(
        parcel_id=parcel_id,
        dimensions=common_pb2.Dimensions(width_mm=60, height_mm=200, depth_mm=200),
        weight_g=500,
        zone=common_pb2.TEMPERATURE_ZONE_AMBIENT,
        destination_site=SITE,
        recipient_phone="13812341234",
        electronic_waybill=True,
    )


async def test_broker_outage_during_deposits_and_pickups(
    tmp_path: Path, own_mosquitto: BrokerHandle
) -> None:
    hub_toml, edge_toml, notifications = write_configs(tmp_path, own_mosquitto)
    hub = Proc(["hub", "--config", str(hub_toml)])
    edge = Proc(["edge", "--config", str(edge_toml)])
    try:
        ready = await asyncio.to_thread(hub.wait_for, r"hub ready: grpc=(\S+) metrics=(\S+)")
        ctl = await asyncio.to_thread(edge.wait_for, r"sim control listening on (\S+):(\d+)")
        metrics_url = ready.group(2)
        async with (
            grpc.aio.insecure_channel(ready.group(1)) as channel,
            ControlClient(ctl.group(1), int(ctl.group(2))) as control,
        ):
            dispatch = dispatch_pb2_grpc.DispatchServiceStub(channel)
            fleet = fleet_pb2_grpc.FleetServiceStub(channel)

            async def online() -> bool:
                try:
                    cab = await fleet.GetCabinet(fleet_pb2.GetCabinetRequest(cabinet_id=CABINET))
                except grpc.aio.AioRpcError:
                    return False
                return cab.online

            await eventually(online, "the cabinet never came online")
            answer = await dispatch.AnnounceParcels(
                dispatch_pb2.AnnounceParcelsRequest(parcels=[_announce(p) for p in PARCELS])
            )
            assert all(o.accepted for o in answer.outcomes), answer

            async def deposit(parcel_id: str) -> str | None:
                return (await control.courier_deposit(parcel_id, timeout_s=2)).opened

            # Online: every reservation reaches the cabinet; the first parcel goes in.
            await eventually(lambda: deposit("OUT-1"), "OUT-1 never opened")

            async def code_of(parcel_id: str) -> str | None:
                if not notifications.exists():
                    return None
                for line in notifications.read_text().splitlines():
                    item = json.loads(line)
                    if item["parcel_id"] == parcel_id:
                        return str(item["code"])
                return None

            code = await eventually(lambda: code_of("OUT-1"), "no pickup code for OUT-1")

            async def parcel(parcel_id: str) -> dispatch_pb2.Parcel:
                return await dispatch.GetParcel(dispatch_pb2.GetParcelRequest(parcel_id=parcel_id))

            async def deposited_at_hub() -> bool:
                return (await parcel("OUT-1")).state == common_pb2.PARCEL_STATE_DEPOSITED

            await eventually(deposited_at_hub, "OUT-1 never deposited at the hub")

            async def cabinet_ready() -> bool:
                # The cabinet's own database holds the code hash and both other reservations.
                rows = await asyncio.to_thread(
                    _rows,
                    tmp_path / "cabinet.db",
                    "SELECT parcel_id, state, code_hash IS NOT NULL FROM compartments",
                )
                return {("OUT-1", "occupied", 1), ("OUT-2", "reserved", 0)} <= set(rows) and (
                    "OUT-3",
                    "reserved",
                    0,
                ) in rows

            await eventually(cabinet_ready, "the cabinet never got the code and reservations")

            async def can_pick() -> str | None:
                return (await control.recipient_pickup(code, timeout_s=2)).opened

            await own_mosquitto.astop()
            # Broker down: the courier and the recipient are still served.
            assert await eventually(lambda: deposit("OUT-2"), "OUT-2 refused offline")
            assert await eventually(lambda: deposit("OUT-3"), "OUT-3 refused offline")
            assert await eventually(can_pick, "pickup refused offline")
            await asyncio.sleep(1.0)  # a few reconnect attempts against the dead broker
            await own_mosquitto.astart()

            last: list[object] = []
            loop = asyncio.get_running_loop()
            nudged = [loop.time()]

            async def all_done() -> bool:
                states = [(await parcel(p)).state for p in PARCELS]
                last[:] = states
                if loop.time() - nudged[0] > 3 and states[0] != common_pb2.PARCEL_STATE_PICKED_UP:
                    # The hub (clean session, shared subscription) misses what the cabinet
                    # replays before the hub itself is back; it notices the seq gap at the
                    # cabinet's next event and asks for ResendEvents. A wrong code makes one.
                    nudged[0] = loop.time()
                    await control.enter_code("000000")
                return states == [
                    common_pb2.PARCEL_STATE_PICKED_UP,
                    common_pb2.PARCEL_STATE_DEPOSITED,
                    common_pb2.PARCEL_STATE_DEPOSITED,
                ]

            try:
                await eventually(all_done, "the hub never caught up", timeout=60)
            except TimeoutError:
                raise AssertionError(
                    f"the hub never caught up: parcel states {last}\n--- edge\n"
                    f"{edge.output()[-3000:]}\n--- hub\n{hub.output()[-3000:]}"
                ) from None
            text = await asyncio.to_thread(
                lambda: urllib.request.urlopen(metrics_url, timeout=5).read().decode()
            )
            # Exactly once: replays and duplicates were not applied twice.
            assert metric(text, "lockerhub_events_applied_total", type="deposited") == 3
            assert metric(text, "lockerhub_events_applied_total", type="picked_up") == 1
            assert metric(text, "lockerhub_parcel_transitions_total", state="picked_up") == 1
    finally:
        edge_rc = edge.terminate()
        hub_rc = hub.terminate()
    assert edge_rc == 0, edge.output()[-2000:]
    assert hub_rc == 0, hub.output()[-2000:]
