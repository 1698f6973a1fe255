"""A fleet on one shared database: parcels go through it, and a SIGKILL loses no committed event.

Real mosquitto with per-device accounts, a real hub (in this process for the parcel test), the
real ``lockerhub sim fleet`` process for the kill test; only the cabinets' hardware is simulated.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import threading
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiomqtt
import grpc
import pytest

from demo.district_hub import in_process_hub
from demo.fleet import Fleet, FleetSpec
from lockerhub.codec import decode
from lockerhub.topics import Kind, Topic
from lockerhub.v1 import common_pb2, dispatch_pb2, dispatch_pb2_grpc, fleet_pb2, fleet_pb2_grpc
from tests.support.broker import BrokerHandle
from tests.support.processes import Proc

SITE = "fleet-site"
N = 50


def _accounts(broker: BrokerHandle, ids: list[str]) -> dict[str, tuple[str, str]]:
    return {d: broker.credentials(d, SITE) for d in ids}


def _hub_mapping(broker: BrokerHandle, tmp: Path, ids: list[str]) -> dict[str, Any]:
    user, password = broker.hub_credentials()
    return {
        "broker": {
            "host": broker.host,
            "port": broker.port,
            "username": user,
            "password": password,
            "client_id": f"hub-{uuid.uuid4().hex[:6]}",
        },
        "storage": {"path": str(tmp / "hub.db")},
        "grpc": {"port": 0},
        "metrics": {"port": 0},
        "pickup": {"hash_iterations": 1000},
        "allocation": {"engine": "smallest_fit"},
        "sites": [{"id": SITE, "name": "Fleet site", "lat": 31.2, "lon": 121.4}],
        "devices": [{"id": d, "site": SITE, "layout": "S:6,M:4"} for d in ids],
    }


async def _online(channel: grpc.aio.Channel, prefix: str) -> int:
    listed = await fleet_pb2_grpc.FleetServiceStub(channel).ListCabinets(
        fleet_pb2.ListCabinetsRequest(), timeout=30
    )
    return sum(c.online for c in listed.cabinets if c.cabinet_id.startswith(prefix))


async def test_parcels_go_in_and_out_of_a_shared_fleet(
    tmp_path: Path, mosquitto: BrokerHandle
) -> None:
    prefix = f"sh{uuid.uuid4().hex[:5]}"
    ids = FleetSpec(cabinets=N, prefix=prefix).device_ids()
    spec = FleetSpec(
        cabinets=N,
        host=mosquitto.host,
        port=mosquitto.port,
        prefix=prefix,
        data_dir=tmp_path / "fleet",
        credentials=_accounts(mosquitto, ids),
        connect_concurrency=8,
        seed=3,
    )
    async with (
        in_process_hub(_hub_mapping(mosquitto, tmp_path, ids), tmp_path) as hub,
        grpc.aio.insecure_channel(hub.grpc_address) as channel,
        Fleet(spec) as fleet,
        asyncio.TaskGroup() as tg,
    ):
        hub_task = tg.create_task(hub.run())
        fleet_task = tg.create_task(fleet.run())
        try:
            # One database thread for the whole fleet, not one per cabinet.
            threads = [t for t in threading.enumerate() if "sqlite" in t.name]
            assert len(threads) <= 2, [t.name for t in threads]  # the fleet's and the hub's
            async with asyncio.timeout(60):
                while await _online(channel, prefix) < N:
                    await asyncio.sleep(0.3)
            dispatch = dispatch_pb2_grpc.DispatchServiceStub(channel)
            answer = await dispatch.AnnounceParcels(
                dispatch_pb2.AnnounceParcelsRequest(
                    parcels=[
                        dispatch_pb2.ParcelAnnouncement(
                            parcel_id=f"SH-{i}",
                            dimensions=common_pb2.Dimensions(
                                width_mm=100, height_mm=100, depth_mm=100
                            ),
                            weight_g=500,
                            zone=common_pb2.TEMPERATURE_ZONE_AMBIENT,
                            destination_site=SITE,
                            recipient_phone=f"1390000000{i}",
                        )
                        for i in range(3)
                    ]
                ),
                timeout=30,
            )
            sims = dict(zip(ids, fleet.sims, strict=True))
            placed = {o.parcel_id: o.cabinet_id for o in answer.outcomes if o.accepted}
            assert len(placed) == 3, answer
            for parcel, cabinet in placed.items():
                async with asyncio.timeout(30):
                    while not (await sims[cabinet].courier_deposit(parcel, timeout_s=1)).opened:
                        await asyncio.sleep(0.2)  # the reservation is still on its way
                    while parcel not in hub.codes:
                        await asyncio.sleep(0.1)
                    # The code hash reaches the cabinet with its next desired state.
                    while not (
                        await sims[cabinet].recipient_pickup(hub.codes[parcel], timeout_s=1)
                    ).opened:
                        await asyncio.sleep(0.2)
                    while (
                        await dispatch.GetParcel(dispatch_pb2.GetParcelRequest(parcel_id=parcel))
                    ).state != common_pb2.PARCEL_STATE_PICKED_UP:
                        await asyncio.sleep(0.1)
            # Each cabinet's rows are its own: only the three used ones have events.
            busy = {a.settings.device.id for a in fleet.agents if a.state.store.counters.last_seq}
            assert set(placed.values()) <= busy
        finally:
            fleet_task.cancel()
            hub_task.cancel()


async def _collect(
    broker: BrokerHandle, prefix: str, seen: dict[str, set[int]], ready: asyncio.Event
) -> None:
    """Every event seq each fleet cabinet publishes (what a hub would receive)."""
    user, password = broker.hub_credentials()
    async with aiomqtt.Client(
        broker.host, broker.port, username=user, password=password, identifier=f"col-{prefix}"
    ) as client:
        await client.subscribe(f"lockerhub/v1/{SITE}/+/event", qos=1)
        ready.set()
        async for msg in client.messages:
            topic = Topic.parse(str(msg.topic))
            if topic.device.startswith(prefix) and isinstance(msg.payload, bytes):
                seen[topic.device].add(decode(Kind.EVENT, msg.payload).seq)


def _committed(db: Path) -> dict[str, int]:
    """Each cabinet's last committed event seq, read from the fleet's file after the kill."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT cabinet, value FROM meta WHERE key = 'last_seq'").fetchall()
    return {str(c): int(v) for c, v in rows}


def _fleet_proc(prefix: str, broker: BrokerHandle, creds: Path, data: Path) -> Proc:
    return Proc(
        [
            *("sim", "fleet", "--cabinets", str(N), "--prefix", prefix),
            *("--broker", f"{broker.host}:{broker.port}", "--credentials", str(creds)),
            *("--data", str(data), "--activity", "1", "--report", "0.5"),
        ]
    )


async def test_a_killed_fleet_loses_no_committed_event(
    tmp_path: Path, mosquitto: BrokerHandle
) -> None:
    prefix = f"sk{uuid.uuid4().hex[:5]}"
    ids = FleetSpec(cabinets=N, prefix=prefix).device_ids()
    creds = tmp_path / "accounts.json"
    creds.write_text(
        json.dumps(
            {d: {"username": u, "password": p} for d, (u, p) in _accounts(mosquitto, ids).items()}
        )
    )
    data = tmp_path / "fleet"
    seen: dict[str, set[int]] = defaultdict(set)
    ready = asyncio.Event()
    collector = asyncio.create_task(_collect(mosquitto, prefix, seen, ready))
    try:
        await asyncio.wait_for(ready.wait(), 20)
        first = _fleet_proc(prefix, mosquitto, creds, data)
        try:
            await asyncio.to_thread(first.wait_for, rf"fleet: {N} cabinets connected")
            # Door activity until well over a hundred events were committed, then SIGKILL.
            await asyncio.to_thread(first.wait_for, r"[1-9]\d{2,} actions", 60)
        finally:
            os.kill(first.popen.pid, signal.SIGKILL)
            first.popen.wait(10)
        committed = _committed(data / "fleet.sqlite3")
        assert set(committed) == set(ids)
        assert sum(committed.values()) > 100
        second = _fleet_proc(prefix, mosquitto, creds, data)
        try:
            await asyncio.to_thread(second.wait_for, rf"fleet: {N} cabinets connected")
            # Whatever the kill left in the outboxes goes out after the restart.
            async with asyncio.timeout(60):
                while any(not set(range(1, n + 1)) <= seen[d] for d, n in committed.items()):
                    await asyncio.sleep(0.2)
        finally:
            rc = second.terminate()
        assert rc == 0, second.output()[-2000:]
        after = _committed(data / "fleet.sqlite3")
        # Sequence numbers go on from where the kill left them: none is given twice.
        assert all(after[d] >= committed[d] for d in ids)
    finally:
        collector.cancel()
        with pytest.raises(asyncio.CancelledError):
            await collector
