"""Every hub metric, declared once on an injected registry (catalogue: docs/metrics.md).

Labels stay bounded (site, cabinet, line, pile, size, state, kind...): never a parcel id, a code,
an id tag or a phone number. State (occupancy, presence, energy meters) is served by custom
collectors from cached snapshots, so a scrape never touches the database or the broker.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from time import perf_counter

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hub.metrics.sorting import SortingMetrics
from hub.metrics.telemetry import DeviceInfo, TelemetryCollector
from lockerhub.v1 import common_pb2, device_pb2

# Known drop reasons, pre-created at 0 so alerts see a series before the first drop.
DROP_REASONS = (
    "topic",
    "oversized",
    "undecodable",
    "invalid",
    "content_type",
    "unknown_device",
    "unknown_site",
    "misplaced",
    "unknown_compartment",
    "unknown_parcel",
    "unknown_command",
    "mismatch",
    "unauthorized",
    "duplicate",
    "stale",
    "held",
    "unknown_plan_version",
    "container_conflict",
    "overflow",
    "error",
)
# Pre-created label values, so dashboards and alerts see series before the first observation.
INGEST_KINDS = ("status", "telemetry", "event", "cmd_result")
COMMAND_TYPES = tuple(f.name for f in device_pb2.Command.DESCRIPTOR.oneofs_by_name["body"].fields)
ALARM_KINDS = tuple(
    v.name.removeprefix("ALARM_KIND_").lower()
    for v in common_pb2.AlarmKind.DESCRIPTOR.values
    if v.number != 0
)
# The hub's supervised background loops (hub.app), pre-created at 0 for alerts.
HUB_TASKS = (
    "mqtt-receive",
    "ingest-apply",
    "command-flush",
    "command-sweeper",
    "lifecycle-sweeper",
    "desired-state",
    "notice-outbox",
    "health-and-snapshot",
)
# Seconds from a few ms (ingestion) to a command's full TTL.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Deposit -> pickup: minutes to a week (pickup deadlines are 48 h to 7 days).
DWELL_BUCKETS = tuple(
    float(m * 60) for m in (1, 5, 15, 30, 60, 120, 240, 480, 720, 1440, 2880, 4320, 10080)
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Occupancy and presence, as last read from the store."""

    # (site, size, state) -> number of compartments
    compartments: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    # device kind -> number online
    devices_online: Mapping[str, int] = field(default_factory=dict)
    # device id -> what the store knows (presence per device; telemetry is accepted only for these)
    devices: Mapping[str, DeviceInfo] = field(default_factory=dict)
    # Recipient notices in the outbox not delivered yet (a stuck gateway shows here).
    notices_pending: int = 0


class SnapshotCollector(Collector):
    """Serves state gauges from a cached snapshot, so a scrape never touches the database."""

    def __init__(self) -> None:
        self._snapshot = Snapshot()
        self._store_up = 0.0
        self._link_up = 0.0

    @property
    def devices(self) -> Mapping[str, DeviceInfo]:
        return self._snapshot.devices

    def update(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def set_health(self, *, store_up: bool, link_up: bool) -> None:
        self._store_up, self._link_up = float(store_up), float(link_up)

    def collect(self) -> Iterable[Metric]:
        snap = self._snapshot
        comps = GaugeMetricFamily(
            "lockerhub_compartments",
            "Compartments by site, size class and state.",
            labels=["site", "size", "state"],
        )
        for (site, size, state), n in sorted(snap.compartments.items()):
            comps.add_metric([site, size, state], n)
        yield comps
        online = GaugeMetricFamily(
            "lockerhub_devices_online", "Devices whose last status said online.", labels=["kind"]
        )
        for kind, n in sorted(snap.devices_online.items()):
            online.add_metric([kind], n)
        yield online
        cab_up = GaugeMetricFamily(
            "lockerhub_cabinet_up",
            "1 if the cabinet's last retained status said online, else 0.",
            labels=["site", "cabinet"],
        )
        line_up = GaugeMetricFamily(
            "lockerhub_sorter_up",
            "1 if the sorting line's last retained status said online, else 0.",
            labels=["site", "line"],
        )
        for device, info in snap.devices.items():
            if info.kind == "cabinet":
                cab_up.add_metric([info.site, device], float(info.online))
            elif info.kind == "sorting_line":
                line_up.add_metric([info.site, device], float(info.online))
        yield cab_up
        yield line_up
        yield GaugeMetricFamily(
            "lockerhub_notices_pending",
            "Recipient notices in the notice outbox not delivered yet.",
            value=snap.notices_pending,
        )
        yield GaugeMetricFamily(
            "lockerhub_store_up", "1 if the last store ping succeeded.", value=self._store_up
        )
        yield GaugeMetricFamily(
            "lockerhub_mqtt_connected",
            "1 while the hub's MQTT link to the broker is up.",
            value=self._link_up,
        )


class HubMetrics:
    """The hub's metrics; build one per hub with its own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.ingest_messages = Counter(
            "lockerhub_ingest_messages_total",
            "MQTT messages received, by topic kind.",
            ["kind"],
            registry=registry,
        )
        self.ingest_dropped = Counter(
            "lockerhub_ingest_dropped_total",
            "MQTT messages dropped (malformed, misplaced, unknown, replayed...), by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in DROP_REASONS:
            self.ingest_dropped.labels(reason)
        self.ingest_duration = Histogram(
            "lockerhub_ingest_duration_seconds",
            "Time to decode, check and apply one MQTT message, by topic kind.",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        for kind in INGEST_KINDS:
            self.ingest_duration.labels(kind)
        self.events_applied = Counter(
            "lockerhub_events_applied_total",
            "Device events applied (exactly once), by event type.",
            ["type"],
            registry=registry,
        )
        self.parcel_transitions = Counter(
            "lockerhub_parcel_transitions_total",
            "Parcel lifecycle transitions, by new state.",
            ["state"],
            registry=registry,
        )
        self.commands = Counter(
            "lockerhub_commands_total",
            "Device commands by final outcome (opened, applied, jammed, expired, timed_out...).",
            ["outcome"],
            registry=registry,
        )
        self.command_duration = Histogram(
            "lockerhub_command_duration_seconds",
            "Time from publishing a device command to its result, by command type.",
            ["type"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        for type_ in COMMAND_TYPES:
            self.command_duration.labels(type_)
        self.grpc_duration = Histogram(
            "lockerhub_grpc_request_duration_seconds",
            "Operator API calls: handling time by method and status code.",
            ["method", "code"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.pickup_code_rejected = Counter(
            "lockerhub_pickup_code_rejected_total",
            "Wrong pickup codes entered on cabinet keypads.",
            registry=registry,
        )
        self.alarms = Counter(
            "lockerhub_alarms_total",
            "Alarms raised by devices, by kind.",
            ["kind"],
            registry=registry,
        )
        for kind in ALARM_KINDS:
            self.alarms.labels(kind)
        self.notices_delivered = Counter(
            "lockerhub_notices_delivered_total",
            "Recipient notices delivered from the notice outbox, by kind.",
            ["kind"],
            registry=registry,
        )
        for kind in ("deposited", "reminder", "reissued"):
            self.notices_delivered.labels(kind)
        self.notifications_failed = Counter(
            "lockerhub_notifications_failed_total",
            "Notice deliveries that failed (the notifier raised or timed out); each is retried.",
            registry=registry,
        )
        self.broker_connects = Counter(
            "lockerhub_broker_connects_total",
            "MQTT connection attempts by result (ok, error).",
            ["result"],
            registry=registry,
        )
        self.task_restarts = Counter(
            "lockerhub_hub_task_restarts_total",
            "Hub background loops restarted after they raised, by task.",
            ["task"],
            registry=registry,
        )
        for task in HUB_TASKS:
            self.task_restarts.labels(task)
        # Parcel flow per site, from the store's transition log (hub.metrics.store_collector).
        self.parcel_events = Counter(
            "lockerhub_parcel_events_total",
            "Parcel lifecycle events by site and new state.",
            ["site", "state"],
            registry=registry,
        )
        self.parcel_dwell = Histogram(
            "lockerhub_parcel_dwell_seconds",
            "Time a parcel waited in a compartment, from deposit to pickup, by site.",
            ["site"],
            buckets=DWELL_BUCKETS,
            registry=registry,
        )
        # Green logistics, counted when a parcel is announced.
        self.parcels_announced = Counter(
            "lockerhub_parcels_announced_total",
            "Parcels announced, by site.",
            ["site"],
            registry=registry,
        )
        self.parcels_ewaybill = Counter(
            "lockerhub_parcels_electronic_waybill_total",
            "Parcels announced with an electronic waybill, by site.",
            ["site"],
            registry=registry,
        )
        self.parcels_reusable = Counter(
            "lockerhub_parcels_reusable_container_total",
            "Parcels announced travelling in a reusable container, by site.",
            ["site"],
            registry=registry,
        )
        self.sorting = SortingMetrics(registry)
        self.snapshot = SnapshotCollector()
        registry.register(self.snapshot)
        self.telemetry = TelemetryCollector(lambda: self.snapshot.devices)
        registry.register(self.telemetry)

    @contextmanager
    def time_ingest(self, kind: str) -> Iterator[None]:
        """Observe the body's duration in ``lockerhub_ingest_duration_seconds{kind}``."""
        start = perf_counter()
        try:
            yield
        finally:
            self.ingest_duration.labels(kind).observe(perf_counter() - start)

    def observe_command(self, type_: str, seconds: float) -> None:
        """A command's result arrived ``seconds`` after it was published."""
        self.command_duration.labels(type_).observe(max(0.0, seconds))

    def add_site(self, site: str, states: Iterable[str]) -> None:
        """Create a site's per-site series at 0, so increase() counts its first parcels."""
        for counter in (self.parcels_announced, self.parcels_ewaybill, self.parcels_reusable):
            counter.labels(site)
        for state in states:
            self.parcel_events.labels(site, state)
        self.parcel_dwell.labels(site)
        self.sorting.add_site(site)

    def parcel_announced(
        self, site: str, *, electronic_waybill: bool, reusable_container: bool
    ) -> None:
        """Count one announced parcel for the green-logistics shares."""
        self.parcels_announced.labels(site).inc()
        if electronic_waybill:
            self.parcels_ewaybill.labels(site).inc()
        if reusable_container:
            self.parcels_reusable.labels(site).inc()
