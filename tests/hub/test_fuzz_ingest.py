"""Fuzzed device payloads through a real broker into a real hub: whatever fails validation leaves
the store exactly as it was, and nothing a device sends makes the hub hit a bug.

A bounded sample runs in ``make test``; the slow variant (``make soak``) runs many more batches."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockerhub.codec import decode
from lockerhub.errors import PayloadError
from lockerhub.topics import Kind
from lockerhub.v1 import device_pb2
from tests.hub.conftest import HubHarness, eventually, running_hub, settings_for
from tests.hub.test_flow import online
from tests.support.fuzz import payloads

# What a device publishes (cmd and desired are the hub's own topics).
DEVICE_KINDS = (Kind.STATUS, Kind.TELEMETRY, Kind.EVENT, Kind.COMMAND_RESULT)
Case = tuple[Kind, bytes, str]
CASES = st.sampled_from(DEVICE_KINDS).flatmap(
    lambda kind: payloads(kind).map(lambda p: (kind, p[0], p[1]))
)
SENTINEL_SEQ = 7_777_777


def valid(case: Case) -> bool:
    kind, payload, content_type = case
    try:
        decode(kind, payload, content_type=content_type)
    except PayloadError:
        return False
    return True


def dropped_total(hub: HubHarness) -> float:
    return sum(
        s.value
        for metric in hub.app.metrics.ingest_dropped.collect()
        for s in metric.samples
        if s.name.endswith("_total")
    )


async def snapshot(hub: HubHarness) -> dict[str, list[Any]]:
    tables = await hub.sql("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    # job_leases is the hub's own clockwork (renewed every pass), not state input could change.
    return {
        name: sorted(await hub.sql(f"SELECT * FROM {name}"), key=repr)
        for (name,) in tables
        if name != "job_leases"
    }


async def scenario(tmp_path: Path, broker: Any, batch: list[Case]) -> None:
    site = f"site-{uuid.uuid4().hex[:8]}"
    async with running_hub(settings_for(tmp_path, broker, site), tmp_path, broker) as hub:  # noqa: SIM117 - hub first
        async with hub.cabinet("CAB-F") as cab:
            await cab.birth()
            await online(hub, "CAB-F")
            await cab.event(door_changed=device_pb2.DoorChanged(compartment_id="A01"))
            await eventually(lambda: hub.sql("SELECT 1 FROM device_events WHERE seq = 1"))
            bad = [c for c in batch if not valid(c)]
            good = [c for c in batch if valid(c)]
            # Invalid input: every message is dropped and counted, and nothing is stored.
            before, drops = await snapshot(hub), dropped_total(hub)
            for kind, payload, content_type in bad:
                await cab.publish(kind, payload, content_type=content_type)
            await eventually(
                lambda: asyncio.sleep(0, dropped_total(hub) >= drops + len(bad)), timeout=20
            )
            assert await snapshot(hub) == before
            # Valid input may change the store (that is what it is for) but never hits a bug.
            for kind, payload, content_type in good:
                await cab.publish(kind, payload, content_type=content_type)
            sentinel = cab.make_event(door_changed=device_pb2.DoorChanged(compartment_id="A01"))
            sentinel.seq = SENTINEL_SEQ
            await cab.send_event(sentinel)
            await eventually(
                lambda: hub.sql(
                    "SELECT 1 FROM device_events WHERE event_id = ?", (sentinel.event_id,)
                ),
                timeout=20,
            )
            assert hub.dropped("error") == 0


FAST = settings(
    max_examples=2,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FAST
@given(batch=st.lists(CASES, min_size=30, max_size=30))
def test_fuzzed_payloads_change_the_store_only_when_valid(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: Any, batch: list[Case]
) -> None:
    asyncio.run(scenario(tmp_path_factory.mktemp("fuzz"), mosquitto, batch))


@pytest.mark.slow
@settings(FAST, max_examples=25)
@given(batch=st.lists(CASES, min_size=60, max_size=60))
def test_fuzzed_payloads_change_the_store_only_when_valid_long(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: Any, batch: list[Case]
) -> None:
    asyncio.run(scenario(tmp_path_factory.mktemp("fuzz"), mosquitto, batch))
