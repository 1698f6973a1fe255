"""A hub killed with SIGKILL under load and restarted loses no event it acknowledged and applies
none twice: the hub PUBACKs an event only after it is committed (manual acks), and its
persistent MQTT session lets the broker keep and redeliver everything else."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import grpc

from lockerhub.v1 import device_pb2, dispatch_pb2, dispatch_pb2_grpc, fleet_pb2, fleet_pb2_grpc
from tests.hub.cabinet import FakeCabinet, inventory_toml
from tests.hub.test_flow import announcement
from tests.support.broker import BrokerHandle
from tests.support.processes import Proc

SITE = "crash-site"
CABINETS = ("CR-1", "CR-2", "CR-3")
EVENTS_PER_CABINET = 120


def hub_config(tmp: Path, broker: BrokerHandle) -> Path:
    user, password = broker.hub_credentials()
    path = tmp / "hub.toml"
    path.write_text(
        f"""
[broker]
host = "{broker.host}"
port = {broker.port}
username = "{user}"
password = "{password}"
client_id = "crash-hub"
# A persistent session: the broker keeps the hub's unacknowledged and new QoS 1 messages while
# the hub is down (MQTT 5 Session Expiry Interval).
session_expiry_s = 600
reconnect_min_s = 0.1
reconnect_max_s = 0.5
[storage]
path = "{tmp / "hub.db"}"
[grpc]
port = 0
[metrics]
port = 0
[notify]
path = "{tmp / "notifications.jsonl"}"
[[sites]]
id = "{SITE}"
{"".join(inventory_toml(name, SITE) for name in CABINETS)}"""
    )
    return path


def db_counts(db: Path) -> tuple[dict[str, list[int]], int]:
    """(device -> applied event seqs, number of DEPOSITED transitions) read from the hub's db."""
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
        seqs: dict[str, list[int]] = {}
        for device, seq in conn.execute("SELECT device, seq FROM device_events ORDER BY seq"):
            seqs.setdefault(device, []).append(seq)
        (deposits,) = conn.execute(
            "SELECT COUNT(*) FROM parcel_transitions WHERE state = 'deposited'"
        ).fetchone()
    return seqs, int(deposits)


async def start_hub(config: Path) -> tuple[Proc, str]:
    hub = Proc(["hub", "--config", str(config)])
    ready = await asyncio.to_thread(hub.wait_for, r"hub ready: grpc=(\S+)", 60)
    return hub, ready.group(1)


async def send_load(cab: FakeCabinet, parcels: dict[str, str], sent: list[int]) -> None:
    """Door events with a deposit now and then; ``sent`` gets each seq the broker acknowledged."""
    deposits = iter(sorted(parcels.items()))
    for i in range(EVENTS_PER_CABINET):
        if i % 40 == 20 and (nxt := next(deposits, None)) is not None:
            parcel_id, compartment = nxt
            body: dict[str, Any] = {
                "deposited": device_pb2.Deposited(
                    parcel_id=parcel_id, compartment_id=compartment, courier_id="c1"
                )
            }
        else:
            body = {
                "door_changed": device_pb2.DoorChanged(
                    compartment_id="A01", open=i % 2 == 0, commanded=True
                )
            }
        event = await cab.event(**body)  # returns once the broker has the event (PUBACK)
        sent.append(event.seq)
        await asyncio.sleep(0.005)


async def test_sigkill_under_load_loses_nothing_and_applies_nothing_twice(
    tmp_path: Path, own_mosquitto: BrokerHandle
) -> None:
    config = hub_config(tmp_path, own_mosquitto)
    hub, target = await start_hub(config)
    try:
        async with contextlib.AsyncExitStack() as stack:
            cabs = [
                await stack.enter_async_context(FakeCabinet(own_mosquitto, SITE, name))
                for name in CABINETS
            ]
            for cab in cabs:
                await cab.birth()
            parcels: dict[str, dict[str, str]] = {}
            async with grpc.aio.insecure_channel(target) as channel:
                fleet = fleet_pb2_grpc.FleetServiceStub(channel)
                for _ in range(600):  # until the three births are applied
                    listed = await fleet.ListCabinets(fleet_pb2.ListCabinetsRequest(site=SITE))
                    if sum(c.online for c in listed.cabinets) == len(CABINETS):
                        break
                    await asyncio.sleep(0.05)
                # Smallest fit first: two parcels per cabinet, on each one's M and L.
                resp = await dispatch_pb2_grpc.DispatchServiceStub(channel).AnnounceParcels(
                    dispatch_pb2.AnnounceParcelsRequest(
                        parcels=[announcement(f"P{k}", SITE) for k in range(2 * len(CABINETS))]
                    )
                )
                for o in resp.outcomes:
                    assert o.accepted, o
                    parcels.setdefault(o.cabinet_id, {})[o.parcel_id] = o.compartment_id
            assert set(parcels) == set(CABINETS)

            sent: dict[str, list[int]] = {c.device: [] for c in cabs}
            load = [
                asyncio.create_task(send_load(c, parcels[c.device], sent[c.device])) for c in cabs
            ]
            while sum(map(len, sent.values())) < len(CABINETS) * EVENTS_PER_CABINET // 3:
                await asyncio.sleep(0.02)
            hub.kill()  # SIGKILL mid-stream: no shutdown code runs
            killed_at = {d: len(s) for d, s in sent.items()}
            await asyncio.sleep(0.5)
            hub, _ = await start_hub(config)
            await asyncio.gather(*load)
            assert all(len(s) == EVENTS_PER_CABINET for s in sent.values())
            assert any(0 < n < EVENTS_PER_CABINET for n in killed_at.values())

            db = tmp_path / "hub.db"
            expected_deposits = sum(len(p) for p in parcels.values())
            deadline = asyncio.get_running_loop().time() + 60
            while True:
                seqs, deposits = await asyncio.to_thread(db_counts, db)
                done = all(len(seqs.get(d, [])) >= len(s) for d, s in sent.items())
                if done or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.2)
            # Every event the devices sent is applied, exactly once.
            for device, sent_seqs in sent.items():
                assert sorted(seqs.get(device, [])) == sorted(sent_seqs), device
            assert deposits == expected_deposits
    finally:
        assert hub.terminate() == 0, hub.output()[-3000:]
