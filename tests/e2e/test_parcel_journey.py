"""One parcel's whole journey through real parts, each in its own process.

mosquitto (project config) <- hub process (`lockerhub hub`) <- edge process (`lockerhub edge`, sim
driver); the test is the dispatch operator (gRPC), the courier and the recipient (sim control API).
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
import pytest

from firmware_sim.control import ControlClient
from lockerhub.v1 import common_pb2, dispatch_pb2, dispatch_pb2_grpc, fleet_pb2, fleet_pb2_grpc
from tests.support.broker import BrokerHandle
from tests.support.processes import Proc

SITE, CABINET = "e2e-site", "e2e-cab-1"
T = TypeVar("T")


@dataclass
class Platform:
    hub: Proc
    edge: Proc
    dispatch: dispatch_pb2_grpc.DispatchServiceStub
    fleet: fleet_pb2_grpc.FleetServiceStub
    control: ControlClient
    metrics_url: str
    notifications: Path


def write_configs(tmp: Path, broker: BrokerHandle) -> tuple[Path, Path, Path]:
    hub_user, hub_pw = broker.hub_credentials()
    dev_user, dev_pw = broker.credentials(CABINET, SITE)
    notifications = tmp / "notifications.jsonl"
    hub_toml = tmp / "hub.toml"
    hub_toml.write_text(
        f"""
[broker]
host = "{broker.host}"
port = {broker.port}
username = "{hub_user}"
password = "{hub_pw}"
client_id = "e2e-hub"
[storage]
path = "{tmp / "hub.db"}"
[grpc]
port = 0
[metrics]
port = 0
snapshot_interval_s = 0.5
[notify]
path = "{notifications}"
[[sites]]
id = "{SITE}"
name = "E2E campus"
lat = 31.23
lon = 121.47
[[devices]]
id = "{CABINET}"
site = "{SITE}"
layout = "S:2,M:2"
"""
    )
    edge_toml = tmp / "cabinet.toml"
    edge_toml.write_text(
        f"""
[device]
id = "{CABINET}"
site = "{SITE}"
[broker]
host = "{broker.host}"
port = {broker.port}
username = "{dev_user}"
password = "{dev_pw}"
[storage]
path = "{tmp / "cabinet.db"}"
[telemetry]
interval_s = 1
[driver]
kind = "sim"
control_port = 0
[[driver.compartments]]
size = "S"
count = 2
[[driver.compartments]]
size = "M"
count = 2
"""
    )
    return hub_toml, edge_toml, notifications


async def eventually(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 20) -> T:
    """Poll ``check`` until it returns something truthy."""
    async with asyncio.timeout(timeout):
        while True:
            if result := await check():
                return result
            await asyncio.sleep(0.1)
    raise AssertionError(what)  # pragma: no cover - timeout raises first


@pytest.fixture
async def platform(tmp_path: Path, mosquitto: BrokerHandle) -> AsyncIterator[Platform]:
    hub_toml, edge_toml, notifications = write_configs(tmp_path, mosquitto)
    hub = Proc(["hub", "--config", str(hub_toml)])
    edge = Proc(["edge", "--config", str(edge_toml)])
    try:
        ready = await asyncio.to_thread(hub.wait_for, r"hub ready: grpc=(\S+) metrics=(\S+)")
        ctl = await asyncio.to_thread(edge.wait_for, r"sim control listening on (\S+):(\d+)")
        async with (
            grpc.aio.insecure_channel(ready.group(1)) as channel,
            ControlClient(ctl.group(1), int(ctl.group(2))) as control,
        ):
            yield Platform(
                hub=hub,
                edge=edge,
                dispatch=dispatch_pb2_grpc.DispatchServiceStub(channel),
                fleet=fleet_pb2_grpc.FleetServiceStub(channel),
                control=control,
                metrics_url=ready.group(2),
                notifications=notifications,
            )
    finally:
        edge_rc = edge.terminate()
        hub_rc = hub.terminate()
    assert edge_rc == 0, edge.output()[-2000:]
    assert hub_rc == 0, hub.output()[-2000:]


async def cabinet(p: Platform) -> fleet_pb2.Cabinet:
    cab: fleet_pb2.Cabinet = await p.fleet.GetCabinet(
        fleet_pb2.GetCabinetRequest(cabinet_id=CABINET)
    )
    return cab


def compartment(cab: fleet_pb2.Cabinet, cid: str) -> fleet_pb2.Compartment:
    (found,) = [c for c in cab.compartments if c.spec.compartment_id == cid]
    return found


def metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    rx = re.compile(rf"^{re.escape(name)}(\{{(.*)\}})? (\S+)$", re.M)
    for m in rx.finditer(text):
        got = ",".join(sorted((m.group(2) or "").split(","))) if m.group(2) else ""
        if got == want:
            return float(m.group(3))
    raise AssertionError(f"{name}{{{want}}} not in /metrics")


async def test_parcel_journey_through_real_processes(platform: Platform) -> None:
    p = platform

    async def online() -> fleet_pb2.Cabinet | None:
        try:
            cab = await cabinet(p)
        except grpc.aio.AioRpcError:
            return None
        return cab if cab.online and len(cab.compartments) == 4 else None

    await eventually(online, "the cabinet never came online at the hub")

    # The operator announces a small parcel: it is reserved in an S compartment of the cabinet.
    answer = await p.dispatch.AnnounceParcels(
        dispatch_pb2.AnnounceParcelsRequest(
            parcels=[
                dispatch_pb2.ParcelAnnouncement(
                    parcel_id="PKG-E2E-1",
                    dimensions=common_pb2.Dimensions(width_mm=60, height_mm=300, depth_mm=200),
                    weight_g=800,
                    zone=common_pb2.TEMPERATURE_ZONE_AMBIENT,
                    destination_site=SITE,
                    recipient_phone="13812341234",
                    electronic_waybill=True,
                )
            ]
        )
    )
    (outcome,) = answer.outcomes
    assert outcome.accepted, outcome.reason
    assert outcome.cabinet_id == CABINET
    slot = outcome.compartment_id
    assert compartment(await cabinet(p), slot).spec.size == common_pb2.SIZE_CLASS_S

    # The courier scans the parcel; the reserved compartment opens, the parcel goes in.
    deposit = await eventually(
        lambda: _try_deposit(p, "PKG-E2E-1"), "the courier's scan never opened"
    )
    assert deposit == slot

    async def parcel_state(state: int) -> dispatch_pb2.Parcel | None:
        parcel = await p.dispatch.GetParcel(dispatch_pb2.GetParcelRequest(parcel_id="PKG-E2E-1"))
        return parcel if parcel.state == state else None

    deposited = await eventually(
        lambda: parcel_state(common_pb2.PARCEL_STATE_DEPOSITED), "never deposited at the hub"
    )
    assert deposited.recipient_phone_masked == "138****1234"
    assert compartment(await cabinet(p), slot).state == common_pb2.COMPARTMENT_STATE_OCCUPIED

    # The recipient got the code from the notifier (the only place it exists in plaintext).
    async def notice() -> dict[str, object] | None:
        if not p.notifications.exists():
            return None
        for line in p.notifications.read_text().splitlines():
            item = json.loads(line)
            if item["parcel_id"] == "PKG-E2E-1":
                return dict(item)
        return None

    note = await eventually(notice, "no pickup notification")
    code = str(note["code"])
    assert note["phone_masked"] == "138****1234"
    assert "13812341234" not in p.notifications.read_text()

    # The cabinet must first know the code's hash (SetPickupCode); a wrong code opens nothing.
    pulses_before = await p.control.relay_pulses()
    wrong = str((int(code) + 1) % 10 ** len(code)).zfill(len(code))
    refused = await p.control.recipient_pickup(wrong, timeout_s=2)
    assert refused.opened is None
    assert await p.control.relay_pulses() == pulses_before

    picked = await eventually(
        lambda: _try_pickup(p, code), "the right code never opened the compartment"
    )
    assert picked == slot
    await eventually(
        lambda: parcel_state(common_pb2.PARCEL_STATE_PICKED_UP), "never picked_up at the hub"
    )

    async def slot_free() -> bool:
        return compartment(await cabinet(p), slot).state == common_pb2.COMPARTMENT_STATE_FREE

    await eventually(slot_free, "the compartment never became free again")

    # A remote open over gRPC: the relay fires and the door-opened result comes back.
    pulses_before = await p.control.relay_pulses(slot)
    opened = await p.fleet.OpenCompartment(
        fleet_pb2.OpenCompartmentRequest(
            cabinet_id=CABINET, compartment_id=slot, reason="e2e: courier reported a stuck door"
        )
    )
    assert opened.outcome == common_pb2.COMMAND_OUTCOME_OPENED
    assert opened.relay_fired
    assert await p.control.relay_pulses(slot) == pulses_before + 1
    await p.control.close_door(slot)

    # The hub's /metrics counted what happened.
    text = await asyncio.to_thread(lambda: urllib.request.urlopen(p.metrics_url, timeout=5).read())
    body = text.decode()
    assert metric(body, "lockerhub_events_applied_total", type="deposited") == 1
    assert metric(body, "lockerhub_events_applied_total", type="picked_up") == 1
    assert metric(body, "lockerhub_pickup_code_rejected_total") >= 1
    assert metric(body, "lockerhub_parcel_transitions_total", state="picked_up") == 1
    assert metric(body, "lockerhub_commands_total", outcome="opened") >= 1


async def _try_deposit(p: Platform, parcel_id: str) -> str | None:
    """The courier scans; None until the cabinet has the reservation (the command is async)."""
    result = await p.control.courier_deposit(parcel_id, timeout_s=2)
    return result.opened


async def _try_pickup(p: Platform, code: str) -> str | None:
    result = await p.control.recipient_pickup(code, timeout_s=2)
    return result.opened
