"""The hub process: composes store, broker link, gRPC and metrics servers; ``lockerhub hub``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from prometheus_client import CollectorRegistry

from hub.api.server import GrpcServer
from hub.commands import CommandService
from hub.connection import BrokerConnection
from hub.errors import HubError
from hub.events import EventApplier
from hub.fleet import FleetService
from hub.ingest import Ingestor
from hub.metrics import HubMetrics
from hub.metrics_server import MetricsServer
from hub.notify import FileNotifier, Notifier
from hub.parcels import ParcelService
from hub.registry import Registry
from hub.repo import devices as devices_repo
from hub.settings import HubSettings
from hub.store import Store
from lockerhub.clock import Clock, SystemClock

log = logging.getLogger(__name__)
T = TypeVar("T")
_HEALTH_INTERVAL_S = 1.0


class HubApp:
    """The hub, as an async context manager; :meth:`run` does the work until cancelled."""

    def __init__(
        self,
        settings: HubSettings,
        *,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.notifier: Notifier = notifier or FileNotifier(settings.notify.path)
        self.metrics = HubMetrics(registry or CollectorRegistry())
        self._stack = AsyncExitStack()
        self._store: Store | None = None
        self._grpc: GrpcServer | None = None
        self._metrics_server: MetricsServer | None = None
        self._broker: BrokerConnection | None = None
        self._ingestor: Ingestor | None = None
        self._commands: CommandService | None = None

    @property
    def grpc_address(self) -> str:
        """``host:port`` of the gRPC server (the bound port)."""
        return self._require(self._grpc).address

    @property
    def metrics_url(self) -> str:
        return self._require(self._metrics_server).url

    @property
    def store(self) -> Store:
        return self._require(self._store)

    @property
    def ingestor(self) -> Ingestor:
        return self._require(self._ingestor)

    async def __aenter__(self) -> Self:
        s = self.settings
        try:
            store = await self._stack.enter_async_context(Store(s.storage.path))
            async with store.transaction() as tx:
                await devices_repo.upsert_sites(tx, s.sites)
            broker = BrokerConnection(s.broker, self.metrics, on_connect=self._on_connect)
            commands = CommandService(store, broker, self.clock, s.commands, self.metrics)
            registry = Registry(s.registry)
            events = EventApplier(
                store, registry, commands, self.notifier, self.clock, s.pickup, self.metrics
            )
            self._ingestor = Ingestor(
                s.ingest, store, registry, events, commands, self.clock, self.metrics
            )
            parcels = ParcelService(store, commands, self.clock, s.reservation, self.metrics)
            fleet = FleetService(store, commands, s.commands, link_up=lambda: broker.connected)
            self._grpc = await self._stack.enter_async_context(GrpcServer(s.grpc, parcels, fleet))
            self._metrics_server = await self._stack.enter_async_context(
                MetricsServer(self.metrics.registry, s.metrics.host, s.metrics.port)
            )
            self._store, self._commands = store, commands
            # Last, so that retained statuses arriving at once find everything ready.
            self._broker = await self._stack.enter_async_context(broker)
            await self._refresh()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def run(self) -> None:
        """Ingest, sweep commands, refresh health and the occupancy snapshot; until cancelled."""
        broker, ingestor = self._require(self._broker), self._require(self._ingestor)
        commands = self._require(self._commands)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(broker.run(ingestor.receive), name="mqtt-receive")
            tg.create_task(ingestor.run(), name="ingest-apply")
            tg.create_task(commands.run_sweeper(), name="command-sweeper")
            tg.create_task(self._watch(), name="health-and-snapshot")

    async def _on_connect(self) -> None:
        await self._require(self._commands).flush_queued()

    async def _watch(self) -> None:
        interval = min(_HEALTH_INTERVAL_S, self.settings.metrics.snapshot_interval_s)
        while True:
            await asyncio.sleep(interval)
            await self._refresh()

    async def _refresh(self) -> None:
        store = self._require(self._store)
        healthy = await store.ping() and self._broker is not None and self._broker.connected
        await self._require(self._grpc).set_serving(healthy)
        if healthy:
            async with store.read() as tx:
                self.metrics.snapshot.update(await devices_repo.occupancy(tx))

    @staticmethod
    def _require(value: T | None) -> T:
        if value is None:
            raise RuntimeError("HubApp is not running: use `async with HubApp(...)`")
        return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``lockerhub hub --config hub.toml``."""
    parser = subparsers.add_parser(
        "hub", help="run the hub service (MQTT ingestion, gRPC, metrics)"
    )
    parser.add_argument("--config", type=Path, default=None, help="TOML settings file")
    parser.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    # Logging is configured by the root CLI (``lockerhub --log-level``).
    try:
        settings = HubSettings.load(args.config)
        return asyncio.run(_serve(settings))
    except HubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


async def _serve(settings: HubSettings) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with HubApp(settings) as app:
        print(f"hub ready: grpc={app.grpc_address} metrics={app.metrics_url}", flush=True)
        runner = asyncio.create_task(app.run(), name="hub-run")
        stopper = asyncio.create_task(stop.wait(), name="hub-stop")
        await asyncio.wait((runner, stopper), return_when=asyncio.FIRST_COMPLETED)
        for task in (runner, stopper):
            task.cancel()
        failed = False
        for task in (runner, stopper):
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # a hub task died: report it and exit non-zero
                log.exception("hub stopped on an error")
                failed = True
    return 1 if failed else 0
