"""Hub fixtures: a running HubApp on the session's real mosquitto, with free ports and tmp files."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from hub.app import HubApp
from hub.parcels.allocation import Allocator
from hub.parcels.notify import Notifier
from hub.settings import HubSettings
from lockerhub.clock import Clock, ManualClock
from lockerhub.v1 import device_pb2, dispatch_pb2_grpc, fleet_pb2_grpc
from tests.hub.cabinet import LAYOUT, FakeCabinet, inventory_entry


def settings_for(tmp_path: Path, broker: Any, site: str, **overrides: Any) -> HubSettings:
    user, password = broker.hub_credentials()
    raw: dict[str, Any] = {
        "broker": {
            "host": broker.host,
            "port": broker.port,
            "username": user,
            "password": password,
            "client_id": f"hub-{uuid.uuid4().hex[:8]}",
            # A group of its own: the session broker is shared with other tests' hubs.
            "share_group": f"g{uuid.uuid4().hex[:8]}",
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
        },
        "storage": {"path": str(tmp_path / "hub.db")},
        "grpc": {"host": "127.0.0.1", "port": 0},
        "metrics": {"host": "127.0.0.1", "port": 0, "snapshot_interval_s": 0.2},
        "commands": {"default_ttl_s": 3, "result_timeout_s": 0.3, "sweep_interval_s": 0.2},
        "pickup": {"hash_iterations": 1000},
        "notify": {"path": str(tmp_path / "notifications.jsonl")},
        "sites": [{"id": site, "name": "Test site", "lat": 31.2, "lon": 121.4}],
    }
    for section, values in overrides.items():
        raw.setdefault(section, {}).update(values)
    return HubSettings.from_mapping(raw)


@dataclass
class HubHarness:
    app: HubApp
    site: str
    channel: grpc.aio.Channel
    tmp_path: Path
    broker: Any

    @property
    def dispatch(self) -> dispatch_pb2_grpc.DispatchServiceStub:
        return dispatch_pb2_grpc.DispatchServiceStub(self.channel)

    @property
    def fleet(self) -> fleet_pb2_grpc.FleetServiceStub:
        return fleet_pb2_grpc.FleetServiceStub(self.channel)

    def cabinet(
        self,
        device: str,
        *,
        kind: int = device_pb2.DEVICE_KIND_CABINET,
        layout: Any = LAYOUT,
        provision: bool = True,
        **kw: Any,
    ) -> FakeCabinet:
        """A test device; unless ``provision=False`` the operator provisions it (``kind`` and
        ``layout``) before it connects."""
        entry = inventory_entry(device, self.site, kind, layout)

        async def provisioned() -> None:
            await self.app.inventory.provision([entry])

        return FakeCabinet(
            self.broker,
            self.site,
            device,
            kind=kind,
            provision=provisioned if provision else None,
            **kw,
        )

    def notifications(self) -> list[dict[str, Any]]:
        path = self.tmp_path / "notifications.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def dropped(self, reason: str) -> float:
        return self.app.metrics.ingest_dropped.labels(reason)._value.get()  # type: ignore[no-any-return]

    async def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
        async with self.app.store.read() as tx:
            return [tuple(r) for r in await tx.fetchall(query, params)]


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 5.0, interval: float = 0.05
) -> Any:
    """Poll ``check`` until it returns something truthy; fail the test on timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")
        await asyncio.sleep(interval)


# Hub loops that sleep on the clock: command sweeper, lifecycle sweeper, desired-state retry
# timer, notice-outbox timer, health-and-snapshot watcher, personal-data retention.
HUB_CLOCK_LOOPS = 6


async def tick(clock: ManualClock, ms: int) -> None:
    """Advance ``clock`` by ``ms`` and wait until every loop it woke ran and slept again.

    Proof that the loops ran, unlike sleeping in real time and asserting that nothing happened.
    """
    asleep, before = clock.sleeping, clock.sleeps
    clock.advance(ms)
    woken = asleep - clock.sleeping
    assert woken, f"advancing {ms} ms woke no sleeping loop"
    async with asyncio.timeout(10):
        await clock.wait_for_sleeps(before + woken)


@contextlib.asynccontextmanager
async def running_hub(
    settings: HubSettings,
    tmp_path: Path,
    broker: Any,
    *,
    clock: Clock | None = None,
    allocator: Allocator | None = None,
    notifier: Notifier | None = None,
) -> AsyncIterator[HubHarness]:
    sleeps = clock.sleeps if isinstance(clock, ManualClock) else 0
    async with HubApp(
        settings,
        registry=CollectorRegistry(),
        clock=clock,
        allocator=allocator,
        notifier=notifier,
    ) as app:
        task = asyncio.create_task(app.run())
        if isinstance(clock, ManualClock):  # every loop that waits on the clock is waiting
            async with asyncio.timeout(10):
                await clock.wait_for_sleeps(sleeps + HUB_CLOCK_LOOPS)
        channel = grpc.aio.insecure_channel(app.grpc_address)
        try:
            yield HubHarness(app, settings.sites[0].id, channel, tmp_path, broker)
        finally:
            await channel.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture
def site() -> str:
    return f"site-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def hub(tmp_path: Path, mosquitto: Any, site: str) -> AsyncIterator[HubHarness]:
    async with running_hub(settings_for(tmp_path, mosquitto, site), tmp_path, mosquitto) as h:
        yield h


@pytest.fixture
async def any_store_hub(
    tmp_path: Path, mosquitto: Any, site: str, store_target: Path | str
) -> AsyncIterator[HubHarness]:
    """A hub on each store back end in turn (SQLite file, PostgreSQL database): a module that
    wants its hub tests run on both defines ``hub`` as this fixture."""
    storage = {"url": store_target} if isinstance(store_target, str) else {}
    settings = settings_for(tmp_path, mosquitto, site, storage=storage)
    async with running_hub(settings, tmp_path, mosquitto) as h:
        yield h
