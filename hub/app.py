"""The hub process: composes store, broker link, gRPC and metrics servers; ``lockerhub hub``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from prometheus_client import CollectorRegistry

from hub.api.compliance import Compliance
from hub.api.server import ApiServices, GrpcServer
from hub.couriers.carriers import CarrierRegistry
from hub.couriers.keys import load_or_create, public_bytes
from hub.couriers.registry import CourierRegistry
from hub.devices.alarms import AlarmService
from hub.devices.commands import CommandService
from hub.devices.desired import DesiredStates
from hub.devices.fleet import FleetService
from hub.devices.gaps import Gaps
from hub.devices.inventory import Inventory
from hub.devices.registry import Registry
from hub.errors import ConfigError, StoreError
from hub.ingest.events import EventApplier
from hub.ingest.pipeline import Ingestor
from hub.metrics.catalogue import HubMetrics
from hub.metrics.server import MetricsServer
from hub.metrics.store_collector import FLOW_LEASE, StoreMetrics
from hub.mqtt.connection import BrokerConnection
from hub.ocpp import CentralSystem
from hub.parcels.allocation import Allocator, RoutingAllocator, allocate_smallest_fit
from hub.parcels.announce import ParcelService
from hub.parcels.codes import CodeReissuer
from hub.parcels.feed import LiveFeed
from hub.parcels.notify import FileNotifier, Notifier
from hub.parcels.outbox import NoticeOutbox
from hub.parcels.sweeper import Sweeper
from hub.partners.credentials import PartnerBook
from hub.partners.notices import Incidents, Maintenance
from hub.planning.plans import DispatchPlanner
from hub.planning.routes import RoutePlanner
from hub.privacy.audit import PersonalData
from hub.privacy.retention import RetentionSweeper
from hub.settings import HubSettings
from hub.sorting.containers import Containers
from hub.sorting.plans import SortPlans
from hub.sorting.screening import Screening
from hub.store import Store
from hub.store.repo import devices as devices_repo
from hub.store.repo import leases
from hub.vehicles import VehicleRegistry
from lockerhub.backoff import Backoff
from lockerhub.clock import Clock, SystemClock
from lockerhub.files import open_private_append
from lockerhub.supervise import supervise

log = logging.getLogger(__name__)
T = TypeVar("T")
_HEALTH_INTERVAL_S = 1.0
# Delay before restarting a failed background loop (jittered, doubling up to the cap).
_RESTART_MIN_S = 0.5
_RESTART_MAX_S = 30.0


class HubApp:
    """The hub, as an async context manager; :meth:`run` does the work until cancelled."""

    def __init__(
        self,
        settings: HubSettings,
        *,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        registry: CollectorRegistry | None = None,
        allocator: Allocator | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.notifier: Notifier = notifier or FileNotifier(settings.notify.path)
        self.metrics = HubMetrics(registry or CollectorRegistry())
        self._allocator = allocator
        self._stack = AsyncExitStack()
        self._store: Store | None = None
        self._grpc: GrpcServer | None = None
        self._metrics_server: MetricsServer | None = None
        self._broker: BrokerConnection | None = None
        self._ingestor: Ingestor | None = None
        self._commands: CommandService | None = None
        self._charging: CentralSystem | None = None
        self.dispatcher: DispatchPlanner | None = None
        self._store_metrics = StoreMetrics(self.metrics, clock=self.clock)
        self._sweeper: Sweeper | None = None
        self._desired: DesiredStates | None = None
        self._inventory: Inventory | None = None
        self._outbox: NoticeOutbox | None = None
        self._retention: RetentionSweeper | None = None
        self._incidents: Incidents | None = None
        self._connected = asyncio.Event()  # set by each broker connect, until flushed

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
            if isinstance(self.notifier, FileNotifier):  # fail at start, not at the first notice
                await asyncio.to_thread(_check_writable, s.notify.path, "notify.path")
            try:
                store = await self._stack.enter_async_context(
                    Store(s.storage.target, pool_size=s.storage.pool_size)
                )
            except StoreError as exc:
                key = "storage.url" if s.storage.url else "storage.path"
                raise ConfigError(f"{key}: {exc}") from exc
            async with store.transaction() as tx:
                await devices_repo.upsert_sites(tx, s.sites)
            broker = BrokerConnection(s.broker, self.metrics, on_connect=self._on_connect)
            commands = CommandService(store, broker, self.clock, s.commands, self.metrics)
            me, lease_s = s.cluster.hub_id, s.cluster.lease_s  # who holds this hub's job leases
            courier_key = await asyncio.to_thread(
                load_or_create, s.couriers.token_key or s.storage.path.parent / "courier-token.key"
            )
            desired = DesiredStates(
                store,
                broker,
                self.clock,
                s.device_config,
                self.metrics,
                courier_key=public_bytes(courier_key),
                holder=me,
                lease_s=lease_s,
            )
            await desired.sync_config()
            alarms = AlarmService(store, self.clock, self.metrics)
            outbox = NoticeOutbox(
                store, self.notifier, self.clock, s.notify, self.metrics, holder=me, lease_s=lease_s
            )
            registry = Registry(s.registry)
            self._inventory = Inventory(store, registry, self.clock, desired)
            await self._inventory.provision(s.devices)
            plans = SortPlans(store, self.clock, self.metrics, desired, alarms)
            screening = Screening(store, self.clock, self.metrics, desired, alarms)
            containers = Containers(store, self.clock, self.metrics)
            gaps = Gaps(commands, grace_ms=int(s.cluster.resend_grace_s * 1000))
            events = EventApplier(
                registry,
                commands,
                outbox,
                s.pickup,
                self.metrics,
                alarms=alarms,
                desired_states=desired,
                deadline_h=s.deadline_h,
                sorting_hub=s.sorting_hub,
                plans=plans,
                screening=screening,
                containers=containers,
                gaps=gaps,
            )
            self._ingestor = Ingestor(
                s.ingest,
                store,
                registry,
                events,
                commands,
                self.clock,
                self.metrics,
                alarms=alarms,
                desired_states=desired,
                gaps=gaps,
            )
            parcels = ParcelService(
                store,
                commands,
                self.clock,
                s.reservation,
                self.metrics,
                desired_states=desired,
                unspecified_consent=s.privacy.unspecified_consent,
                codes=CodeReissuer(
                    store, commands, outbox, self.clock, s.pickup, desired_states=desired
                ),
                allocator=self._allocator
                or (
                    RoutingAllocator(
                        {x.id: (x.lat, x.lon) for x in s.sites}, radius_m=s.allocation.radius_m
                    )
                    if s.allocation.engine == "routing"
                    else allocate_smallest_fit
                ),
            )
            couriers = CourierRegistry(
                store,
                self.clock,
                s.couriers,
                desired,
                courier_key,
            )
            fleet = FleetService(
                store,
                commands,
                s.commands,
                link_up=lambda: broker.connected,
                desired_states=desired,
                clock=self.clock,
            )
            self._sweeper = Sweeper(
                store,
                parcels,
                commands,
                desired,
                alarms,
                outbox,
                self.clock,
                s.lifecycle,
                self.metrics,
                holder=me,
                lease_s=lease_s,
                gaps=gaps,
                pile_silent_after_s=s.ocpp.silent_after_s,
            )
            self._desired = desired
            self._outbox = outbox
            self._retention = RetentionSweeper(
                store, self.clock, s.privacy, holder=me, lease_s=lease_s
            )
            self._incidents = Incidents(store, self.clock, s.partners)
            if s.ocpp.enabled:
                self._charging = await self._stack.enter_async_context(
                    CentralSystem(
                        s.ocpp,
                        sites=[site.id for site in s.sites],
                        store=store,
                        alarms=alarms,
                        metrics=self.metrics,
                        clock=self.clock,
                    )
                )
            planner = await self._stack.enter_async_context(RoutePlanner(store))
            charging = self._charging
            self.dispatcher = DispatchPlanner(
                store,
                self.clock,
                s,
                planner,
                metrics=self.metrics.dispatch,
                piles=charging.piles if charging is not None else None,
            )
            api = ApiServices(
                parcels=parcels,
                fleet=fleet,
                alarms=alarms,
                feed=LiveFeed(store, poll_s=s.cluster.journal_poll_s),
                planner=planner,
                charging=self._charging,
                compliance=Compliance(
                    store=store,
                    clock=self.clock,
                    partners=PartnerBook(store, self.clock),
                    maintenance=Maintenance(store, self.clock, s.partners),
                    incidents=self._incidents,
                    personal_data=PersonalData(store, self.clock),
                ),
                carriers=CarrierRegistry(store, self.clock),
                couriers=couriers,
                store=store,
                plans=plans,
                screening=screening,
                containers=containers,
                dispatcher=self.dispatcher,
                vehicles=VehicleRegistry(store, self.clock, (z.id for z in s.zones)),
            )
            self._grpc = await self._stack.enter_async_context(
                GrpcServer(s.grpc, api, auth=s.auth, metrics=self.metrics, clock=self.clock)
            )
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
        """Run every background loop, each supervised (restarted when it raises); until cancelled.

        Only cancellation (the lifespan ending) stops them: a loop that fails is logged, counted
        in ``lockerhub_hub_task_restarts_total{task}`` and restarted after a backoff.
        """
        broker, ingestor = self._require(self._broker), self._require(self._ingestor)
        commands = self._require(self._commands)
        loops: dict[str, Callable[[], Awaitable[None]]] = {
            # The metrics tap reads energy/sorter telemetry before the ingest queue.
            "mqtt-receive": lambda: broker.run(self.metrics.telemetry.tap(ingestor.receive)),
            "ingest-apply": ingestor.run,
            "command-flush": self._flush_on_connect,
            "command-sweeper": commands.run_sweeper,
            "command-publisher": commands.run_publisher,
            "lifecycle-sweeper": self._require(self._sweeper).run,
            "desired-state": self._require(self._desired).run,
            "notice-outbox": self._require(self._outbox).run,
            "personal-data-retention": self._require(self._retention).run,
            "health-and-snapshot": self._watch,
        }
        async with asyncio.TaskGroup() as tg:
            for name, loop in loops.items():
                tg.create_task(
                    supervise(
                        name,
                        loop,
                        clock=self.clock,
                        on_restart=lambda task: self.metrics.task_restarts.labels(task).inc(),
                        backoff=Backoff(_RESTART_MIN_S, _RESTART_MAX_S),
                    ),
                    name=name,
                )

    @property
    def outbox(self) -> NoticeOutbox:
        return self._require(self._outbox)

    @property
    def inventory(self) -> Inventory:
        """Provisioning of devices and layouts (the settings' ``[[devices]]`` at start-up)."""
        return self._require(self._inventory)

    @property
    def link_up(self) -> bool:
        """True while the broker link is connected."""
        return self._broker is not None and self._broker.connected

    @property
    def retention(self) -> RetentionSweeper:
        return self._require(self._retention)

    @property
    def incidents(self) -> Incidents:
        return self._require(self._incidents)

    @property
    def sweeper(self) -> Sweeper:
        return self._require(self._sweeper)

    @property
    def desired(self) -> DesiredStates:
        return self._require(self._desired)

    @property
    def charging(self) -> CentralSystem:
        """The OCPP central system (only with [ocpp] enabled)."""
        return self._require(self._charging)

    async def _on_connect(self) -> None:
        # Called inside the receive loop: hand the store work to a loop of its own, so that a
        # store failure while flushing does not take message reception down with it.
        self._connected.set()
        self._require(self._desired).wake()

    async def _flush_on_connect(self) -> None:
        """After each connect, publish the commands stored while the broker was down."""
        commands = self._require(self._commands)
        while True:
            await self._connected.wait()
            self._connected.clear()
            try:
                await commands.flush_queued()
            except BaseException:
                self._connected.set()  # not flushed: the restarted loop tries again
                raise

    async def _watch(self) -> None:
        interval = min(_HEALTH_INTERVAL_S, self.settings.metrics.snapshot_interval_s)
        while True:
            await self.clock.sleep(interval)
            await self._refresh()

    async def _refresh(self) -> None:
        store = self._require(self._store)
        store_up = await store.ping()
        link_up = self._broker is not None and self._broker.connected
        healthy = store_up and link_up
        self.metrics.snapshot.set_health(store_up=store_up, link_up=link_up)
        await self._require(self._grpc).set_serving(healthy)
        if self._incidents is not None:  # outages become incidents, notified to partners
            try:
                await self._incidents.observe(store_up=store_up, link_up=link_up)
            except StoreError as exc:  # the store failed since the ping: seen on the next tick
                log.warning("incidents: store failed while recording: %s", exc)
        if healthy:
            me, ttl_ms = self.settings.cluster.hub_id, int(self.settings.cluster.lease_s * 1000)
            async with store.transaction() as tx:  # one hub counts parcel flow (docs/metrics.md)
                now = self.clock.now_ms()
                counting = await leases.acquire(tx, FLOW_LEASE, me, now_ms=now, ttl_ms=ttl_ms)
            async with store.read() as tx:
                await self._store_metrics.refresh(tx, count_flow=counting)

    @staticmethod
    def _require(value: T | None) -> T:
        if value is None:
            raise RuntimeError("HubApp is not running: use `async with HubApp(...)`")
        return value


def _check_writable(path: Path, key: str) -> None:
    try:
        open_private_append(path).close()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot write {path}: {exc.strerror or exc}") from exc
