"""A write whose caller goes away before its commit commits nothing (gRPC deadline, real hub)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest

from hub.parcels.allocation import ParcelDemand, allocate_smallest_fit
from lockerhub.v1 import dispatch_pb2
from tests.hub.conftest import HubHarness, eventually, running_hub, settings_for
from tests.hub.test_flow import announcement, online


class GatedAllocator:
    """The real allocator, held at a gate: the announce transaction is mid-way on its thread."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, demands: Sequence[ParcelDemand], slots: Sequence[Any]) -> list[int | None]:
        self.entered.set()
        assert self.release.wait(30), "the test never released the allocator"
        return allocate_smallest_fit(demands, slots)


def _ended_calls(hub: HubHarness, method: str) -> float:
    """How many calls of ``method`` the server saw end with an error (cancelled included)."""
    return sum(
        sample.value
        for metric in hub.app.metrics.grpc_duration.collect()
        for sample in metric.samples
        if sample.name.endswith("_count")
        and sample.labels.get("method") == method
        and sample.labels.get("code") != "OK"
    )


async def test_announce_past_its_deadline_commits_nothing(
    tmp_path: Path, mosquitto: Any, site: str
) -> None:
    gate = GatedAllocator()
    settings = settings_for(tmp_path, mosquitto, site)
    hub_cm = running_hub(settings, tmp_path, mosquitto, allocator=gate)
    async with hub_cm as hub, hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        request = dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-LATE", hub.site)])
        call = asyncio.ensure_future(hub.dispatch.AnnounceParcels(request, timeout=0.5))
        assert await asyncio.to_thread(gate.entered.wait, 10)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await call
        assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # The client gives up on its own clock; wait until the server has cancelled the handler
        # too (the interceptor observes every call as it ends), while the allocator still holds
        # the transaction mid-way on the database thread.
        await eventually(lambda: asyncio.sleep(0, _ended_calls(hub, "AnnounceParcels")))
        # Now the work may finish, and must roll back instead of committing.
        gate.release.set()
        assert await hub.sql("SELECT id FROM parcels") == []
        assert await hub.sql("SELECT id FROM commands") == []
        # The store is still healthy: the same announcement succeeds afterwards.
        resp = await hub.dispatch.AnnounceParcels(request, timeout=10)
        assert resp.outcomes[0].accepted
        assert len(await hub.sql("SELECT id FROM parcels")) == 1
