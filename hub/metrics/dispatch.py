"""Dispatch metrics for the city's policy targets, from the newest route plan of each hub site.

Gauges describe the plan in force (a re-plan replaces it, so counters would count twice); the
permit-violation counter counts every breach the hub's own check finds in any plan (must stay 0).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

VEHICLE_CLASSES = ("e_bike", "electric_van", "box_vehicle", "combustion_van")


@dataclass(frozen=True, slots=True)
class RouteFigures:
    """One planned route, as the metrics see it."""

    vehicle_class: str
    new_energy: bool
    parcels: int
    distance_km: float
    energy_kwh: float
    charge_kwh: float


class DispatchMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.parcels = Gauge(
            "lockerhub_dispatch_planned_parcels",
            "Parcels to deliver in the newest plan, by vehicle class and new-energy or not.",
            ["site", "vehicle_class", "new_energy"],
            registry=registry,
        )
        self.distance = Gauge(
            "lockerhub_dispatch_planned_distance_km",
            "Kilometres driven in the newest plan, by vehicle class.",
            ["site", "vehicle_class"],
            registry=registry,
        )
        self.energy = Gauge(
            "lockerhub_dispatch_planned_energy_kwh",
            "Battery energy used in the newest plan, by vehicle class.",
            ["site", "vehicle_class"],
            registry=registry,
        )
        self.charge = Gauge(
            "lockerhub_dispatch_planned_charge_kwh",
            "Energy charged at piles en route in the newest plan.",
            ["site"],
            registry=registry,
        )
        self.unserved = Gauge(
            "lockerhub_dispatch_unserved_stops",
            "Sites the newest plan could not serve.",
            ["site"],
            registry=registry,
        )
        self.violations = Counter(
            "lockerhub_dispatch_permit_violations_total",
            "Route stops breaking a permit, a zone window or site hours (the hub's own check).",
            registry=registry,
        )
        self.plans = Counter(
            "lockerhub_dispatch_plans_total",
            "Route plans made, by outcome (complete: every stop served).",
            ["outcome"],
            registry=registry,
        )
        for outcome in ("complete", "partial"):
            self.plans.labels(outcome)
        self.violations.inc(0)

    def plan_made(
        self, hub_site: str, routes: Iterable[RouteFigures], *, unserved: int, violations: int
    ) -> None:
        """Replace the hub site's figures with those of its newest plan."""
        routes = list(routes)
        for vclass in VEHICLE_CLASSES:
            for flag in ("true", "false"):
                self.parcels.labels(hub_site, vclass, flag).set(
                    sum(
                        r.parcels
                        for r in routes
                        if r.vehicle_class == vclass and r.new_energy == (flag == "true")
                    )
                )
            mine = [r for r in routes if r.vehicle_class == vclass]
            self.distance.labels(hub_site, vclass).set(sum(r.distance_km for r in mine))
            self.energy.labels(hub_site, vclass).set(sum(r.energy_kwh for r in mine))
        self.charge.labels(hub_site).set(sum(r.charge_kwh for r in routes))
        self.unserved.labels(hub_site).set(unserved)
        self.violations.inc(violations)
        self.plans.labels("partial" if unserved else "complete").inc()
