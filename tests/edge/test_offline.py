"""Offline first: the retained desired state serves couriers and recipients without the hub."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from edge.agent import EdgeAgent
from edge.cabinet import CompartmentState
from firmware_sim.cabinet import SimulatedCabinet
from lockerhub.codes import hash_code
from lockerhub.topics import Kind
from lockerhub.v1 import common_pb2, device_pb2
from tests.edge.conftest import FakeHub, edge_settings, running
from tests.support.broker import BrokerHandle

S = CompartmentState


async def until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def first_deliveries(events: list[device_pb2.DeviceEvent]) -> list[device_pb2.DeviceEvent]:
    """What a hub applying each (device, seq) once keeps, in arrival order."""
    seen: set[int] = set()
    out = []
    for e in events:
        if e.seq not in seen:
            seen.add(e.seq)
            out.append(e)
    return out


async def test_desired_state_serves_offline_and_replays_in_order(
    tmp_path: Path, own_mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, own_mosquitto, device_id)
    sim = SimulatedCabinet(settings.driver.compartment_specs())
    hub_id = f"hub-{uuid.uuid4().hex[:8]}"
    desired = device_pb2.DesiredState(
        version=3,
        ts_ms=int(time.time() * 1000),
        reservations=[device_pb2.ReserveCompartment(parcel_id="P-1", compartment_id="C01")],
        pickup_codes=[
            device_pb2.SetPickupCode(
                parcel_id="P-0", compartment_id="C02", code_hash=hash_code("246810")
            )
        ],
        disabled_compartments=["C03"],
        config=device_pb2.DeviceConfig(door_left_open_s=90),
    )
    async with running(EdgeAgent(settings, sim)) as agent:
        async with FakeHub(own_mosquitto, device_id, identifier=hub_id, persistent=True) as hub:
            await hub.publish_desired(desired)
            await until(lambda: agent.desired_version == 3)
            assert agent.compartment("C01").state is S.RESERVED
            assert agent.compartment("C02").state is S.OCCUPIED
            assert agent.compartment("C03").reported_state() is S.DISABLED
            assert agent.config.door_left_open_s == 90
            await hub.wait(lambda: [s for s in hub.of(Kind.STATUS) if s.desired_version == 3])
            # An older version is ignored whole.
            await hub.publish_desired(
                device_pb2.DesiredState(version=2, ts_ms=int(time.time() * 1000))
            )
            await until(lambda: agent.stats.desired_ignored >= 1)
            assert agent.compartment("C01").state is S.RESERVED
            # Hostile desired states are dropped at ingress.
            await hub.publish_desired(
                device_pb2.DesiredState(version=0, ts_ms=int(time.time() * 1000))
            )
            bad = device_pb2.DesiredState(version=9, ts_ms=int(time.time() * 1000))
            bad.reservations.add(parcel_id="a/#", compartment_id="C01")
            await hub.publish_desired(bad)
            await until(lambda: sum(agent.stats.dropped_commands.values()) >= 2)
            assert agent.desired_version == 3
            await own_mosquitto.astop()
        await until(lambda: not agent.connected.is_set())

        # The hub is gone: the courier and the recipient are served from the cached state.
        assert (await sim.courier_deposit("P-1")).opened == "C01"
        assert (await sim.recipient_pickup("246810")).opened == "C02"
        refused = agent.stats.scans_refused
        assert (await sim.courier_deposit("P-x", timeout_s=0.3)).opened is None
        await until(lambda: agent.stats.scans_refused == refused + 1)  # the scan was handled
        await until(lambda: agent.compartment("C02").state is S.FREE)

    # A restart while still offline keeps everything (the database is the truth).
    async with running_offline(EdgeAgent(settings, sim)) as agent:
        assert agent.desired_version == 3
        assert agent.compartment("C01").state is S.OCCUPIED
        assert agent.compartment("C02").state is S.FREE
        assert agent.outbox_depth > 0
        await own_mosquitto.astart()
        async with FakeHub(own_mosquitto, device_id, identifier=hub_id, persistent=True) as hub:
            await hub.wait_event("picked_up", timeout=15)
            await until(lambda: agent.outbox_depth == 0, 15)
            events = first_deliveries(hub.events())

    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs), "replayed out of order"
    assert sorted(seqs) == list(range(1, len(seqs) + 1)), "gap in seq"
    bodies = [e.WhichOneof("body") for e in events]
    assert bodies.index("deposited") < bodies.index("picked_up")
    assert [e.deposited.parcel_id for e in events if e.HasField("deposited")] == ["P-1"]
    assert [e.picked_up.parcel_id for e in events if e.HasField("picked_up")] == ["P-0"]


class running_offline:
    """Run an agent whose broker is down (no wait for a connection)."""

    def __init__(self, agent: EdgeAgent) -> None:
        self.agent = agent
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> EdgeAgent:
        await self.agent.__aenter__()
        self._task = asyncio.create_task(self.agent.run())
        return self.agent

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.agent.__aexit__(None, None, None)


async def test_full_outbox_is_reported_and_drains(
    tmp_path: Path, own_mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(
        tmp_path,
        own_mosquitto,
        device_id,
        {
            "storage": {"outbox_max": 100, "replay_rate_per_s": 500},
            "telemetry": {"interval_s": 0.2},
        },
    )
    sim = SimulatedCabinet(settings.driver.compartment_specs())
    hub_id = f"hub-{uuid.uuid4().hex[:8]}"
    async with running(EdgeAgent(settings, sim)) as agent:
        async with FakeHub(own_mosquitto, device_id, identifier=hub_id, persistent=True):
            pass  # a persistent hub session: the broker queues for it while it is away
        await own_mosquitto.astop()
        await until(lambda: not agent.connected.is_set())
        # Forced opens while offline: 4 events each (open, alarm, close, alarm cleared).
        for _ in range(30):
            await sim.force_open("C01")
            await sim.close_door("C01")
        await until(lambda: agent.outbox_full)
        await until(lambda: agent.stats.telemetry_coalesced >= 2)
        assert agent.state.store.outbox_full_total == 1
        await own_mosquitto.astart()
        async with FakeHub(own_mosquitto, device_id, identifier=hub_id, persistent=True) as hub:
            await until(lambda: agent.outbox_depth == 0, 20)
            await hub.wait(lambda: [s for s in hub.of(Kind.STATUS) if not s.outbox_full], 10)
            alarms = [
                (e.alarm.active)
                for e in first_deliveries(hub.events("alarm"))
                if e.alarm.kind == common_pb2.ALARM_KIND_OUTBOX_FULL
            ]
            assert alarms == [True, False]
            forced = [
                e for e in first_deliveries(hub.events("door_changed")) if e.door_changed.open
            ]
            assert len(forced) == 30, "no business event dropped"
            # Coalesced telemetry: at most one stale sample came from the outbox.
            assert not agent.outbox_full
