"""Every hub metric, declared once on an injected registry. Labels stay bounded: never a parcel id,
a code or a phone number."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

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
    "duplicate",
    "stale",
    "overflow",
    "error",
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Occupancy and presence, as last read from the store."""

    # (site, size, state) -> number of compartments
    compartments: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    # device kind -> number online
    devices_online: Mapping[str, int] = field(default_factory=dict)


class SnapshotCollector(Collector):
    """Serves state gauges from a cached snapshot, so a scrape never touches the database."""

    def __init__(self) -> None:
        self._snapshot = Snapshot()

    def update(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[GaugeMetricFamily]:
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
        self.notifications_failed = Counter(
            "lockerhub_notifications_failed_total",
            "Recipient notifications that could not be handed to the notifier.",
            registry=registry,
        )
        self.broker_connects = Counter(
            "lockerhub_broker_connects_total",
            "MQTT connection attempts by result (ok, error).",
            ["result"],
            registry=registry,
        )
        self.snapshot = SnapshotCollector()
        registry.register(self.snapshot)
