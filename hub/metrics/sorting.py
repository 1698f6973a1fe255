"""Sorting-hub metrics: sort exceptions, screening, and reusable containers (docs/metrics.md).

Counters are per site (bounded); container state and the screening holds in force are served from
snapshots the store refresh tick reads (``hub.metrics.store_collector``), never from the database
at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

SORT_EXCEPTION_REASONS = ("stale_plan", "wrong_chute", "no_chute")
SCREENING_RESULTS = ("clear", "hold")
SCREENING_REFUSALS = ("unknown_parcel", "unauthorized", "mismatch")
CONTAINER_STATES = ("at_hub", "filled", "loaded", "at_site", "empty_at_site")


@dataclass(frozen=True, slots=True)
class ContainerSnapshot:
    """Containers as last read from the store."""

    # (state, site) -> containers; site is '' while on a vehicle
    by_state: Mapping[tuple[str, str], int] = field(default_factory=dict)
    # completed cycles (returns to the hub) over all containers
    cycles: int = 0
    # containers not seen for the loss threshold (and not waiting at the hub)
    lost: int = 0
    # site -> (parcels sorted for the site that travelled in a container, parcels sorted for it)
    share: Mapping[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HoldSnapshot:
    """Screening holds in force as last read from the store, by the station's site."""

    # site -> parcels held now (every known site, 0 included, so the series always exist)
    held: Mapping[str, int] = field(default_factory=dict)
    # site -> of those, held for longer than the overdue threshold
    overdue: Mapping[str, int] = field(default_factory=dict)


class HoldCollector(Collector):
    def __init__(self) -> None:
        self.snapshot = HoldSnapshot()

    def collect(self) -> Iterable[Metric]:
        snap = self.snapshot
        held = GaugeMetricFamily(
            "lockerhub_screening_holds",
            "Parcels held at screening now (not released), by site.",
            labels=["site"],
        )
        for site, n in sorted(snap.held.items()):
            held.add_metric([site], n)
        yield held
        overdue = GaugeMetricFamily(
            "lockerhub_screening_holds_overdue",
            "Parcels held at screening for longer than the overdue threshold, by site.",
            labels=["site"],
        )
        for site, n in sorted(snap.overdue.items()):
            overdue.add_metric([site], n)
        yield overdue


class ContainerCollector(Collector):
    def __init__(self) -> None:
        self.snapshot = ContainerSnapshot()

    def collect(self) -> Iterable[Metric]:
        snap = self.snapshot
        states = GaugeMetricFamily(
            "lockerhub_containers",
            "Reusable containers by state and site (site empty while on a vehicle).",
            labels=["state", "site"],
        )
        for (state, site), n in sorted(snap.by_state.items()):
            states.add_metric([state, site], n)
        yield states
        yield GaugeMetricFamily(
            "lockerhub_containers_in_circulation",
            "Reusable containers known and not lost.",
            value=sum(snap.by_state.values()) - snap.lost,
        )
        yield GaugeMetricFamily(
            "lockerhub_container_cycles",
            "Completed container cycles (fill to return), summed over all containers.",
            value=snap.cycles,
        )
        yield GaugeMetricFamily(
            "lockerhub_containers_lost",
            "Containers away from the hub and not seen within the loss threshold.",
            value=snap.lost,
        )
        share = GaugeMetricFamily(
            "lockerhub_reusable_container_share",
            "Share of the parcels sorted for a site that travelled in a tracked reusable "
            "container (measured from container fills, not the announce flag).",
            labels=["site"],
        )
        for site, (inside, total) in sorted(snap.share.items()):
            share.add_metric([site], inside / total if total else 0.0)
        yield share


class SortingMetrics:
    """Counters of the sorting hub, on the hub's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sort_exceptions = Counter(
            "lockerhub_sort_exceptions_total",
            "Parcels a line sorted against an old plan, to a wrong chute, or without a chute.",
            ["site", "reason"],
            registry=registry,
        )
        self.sort_plans = Counter(
            "lockerhub_sort_plans_total",
            "Sort plan versions sent to lines (desired state), by site.",
            ["site"],
            registry=registry,
        )
        self.screened = Counter(
            "lockerhub_parcels_screened_total",
            "Screening results applied, by site and result (clear, hold).",
            ["site", "result"],
            registry=registry,
        )
        self.held = Counter(
            "lockerhub_parcels_held_total",
            "Parcels put on hold at screening, by site.",
            ["site"],
            registry=registry,
        )
        self.released = Counter(
            "lockerhub_parcels_released_total",
            "Screening holds lifted by an operator, by site.",
            ["site"],
            registry=registry,
        )
        self.screening_refused = Counter(
            "lockerhub_screening_refused_total",
            "Screening results refused (unknown parcel, parcel of another hub, not a station...).",
            ["reason"],
            registry=registry,
        )
        for reason in SCREENING_REFUSALS:
            self.screening_refused.labels(reason)
        self.container_refused = Counter(
            "lockerhub_container_events_refused_total",
            "Container movements refused, by reason (conflict: in two places at once).",
            ["reason"],
            registry=registry,
        )
        for reason in ("conflict", "held", "unknown_parcel", "invalid"):
            self.container_refused.labels(reason)
        self.containers = ContainerCollector()
        registry.register(self.containers)
        self.holds = HoldCollector()
        registry.register(self.holds)

    def add_site(self, site: str) -> None:
        for reason in SORT_EXCEPTION_REASONS:
            self.sort_exceptions.labels(site, reason)
        for result in SCREENING_RESULTS:
            self.screened.labels(site, result)
        for counter in (self.held, self.released, self.sort_plans):
            counter.labels(site)
