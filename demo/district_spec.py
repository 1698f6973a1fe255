"""What a simulated district day is (its spec) and what it recorded: plain data, JSON-ready."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

# Compartments per cabinet: small, medium, large.
LAYOUT = (("S", 4), ("M", 3), ("L", 1))
# Real seconds of the day per planned parcel, at least. Every parcel costs the hub and the district
# process (agents, people) CPU for its announcement, deposit, pickup or return; 2,000 cabinets'
# 8,000 parcels in a 120 s day asked more than two shared cores give, events reached the hub
# simulated hours late and the day fell apart. A larger district gets a longer day (``paced``).
MIN_DAY_S_PER_PARCEL = 0.1


@dataclass(frozen=True, slots=True, kw_only=True)
class DistrictSpec:
    """What to simulate; ``extra_cabinet_at`` adds one cabinet at that site (a what-if)."""

    cabinets: int = 200
    sites: int = 20
    day_s: float = 240.0
    parcels_per_cabinet: float = 4.0
    seed: int = 17
    faults: bool = True
    extra_cabinet_at: str | None = None
    broker: str = "auto"
    # Benchmarks: the hub in a process of its own (its CPU measured apart), an idle baseline first.
    hub_process: bool = False
    idle_s: float = 0.0
    # False: run the day in ``day_s`` whatever the size (``paced`` leaves it alone).
    pace: bool = True
    # Set by ``paced``: the length asked for, when the district's size made the day longer.
    asked_day_s: float | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.sites <= 500:
            raise ValueError("--sites must be 1-500")
        if not self.sites <= self.cabinets <= 5000:
            raise ValueError("--cabinets must be at least --sites and at most 5000")
        if not 20 <= self.day_s <= 86400:
            raise ValueError("--day-s must be 20-86400 seconds")
        if not 0 < self.parcels_per_cabinet <= 50:
            raise ValueError("--parcels-per-cabinet must be in (0, 50]")
        if self.broker not in ("auto", "mosquitto", "embedded"):
            raise ValueError("--broker must be auto, mosquitto or embedded")

    # The simulated day runs from first_hour to last_hour (nothing happens at night).
    first_hour: float = 5.0
    last_hour: float = 23.0

    def parcels(self) -> int:
        """Parcels the day's plan announces."""
        return max(1, round(self.parcels_per_cabinet * self.cabinets))

    def paced(self) -> DistrictSpec:
        """This spec with a day at least ``MIN_DAY_S_PER_PARCEL`` per parcel long (unless
        ``pace`` is off); ``asked_day_s`` keeps the length asked for."""
        need = float(round(MIN_DAY_S_PER_PARCEL * self.parcels()))
        if not self.pace or need <= self.day_s:
            return self
        return replace(self, day_s=need, asked_day_s=self.day_s)

    @property
    def hour_s(self) -> float:
        """Real seconds per simulated hour."""
        return self.day_s / (self.last_hour - self.first_hour)

    def site_ids(self) -> list[str]:
        return [f"site-{i + 1:02d}" for i in range(self.sites)]

    def cabinet_sites(self) -> list[tuple[str, str]]:
        sites = self.site_ids()
        width = max(3, len(str(self.cabinets)))
        cabs = [(f"cab-{i + 1:0{width}d}", sites[i % len(sites)]) for i in range(self.cabinets)]
        if self.extra_cabinet_at is not None:
            cabs.append(("cab-extra", self.extra_cabinet_at))
        return cabs


@dataclass(slots=True)
class DayRecord:
    """What the hub said about the day; JSON-ready, the report's only input."""

    spec: dict[str, Any]
    start_ms: int = 0
    end_ms: int = 0
    wall_s: float = 0.0
    capacity: dict[str, int] = field(default_factory=dict)  # site -> compartments
    cabinets: dict[str, str] = field(default_factory=dict)  # cabinet -> site
    refused: list[dict[str, Any]] = field(default_factory=list)
    parcels: list[dict[str, Any]] = field(default_factory=list)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    energy_wh: dict[str, float] = field(default_factory=dict)  # site -> Wh over the day
    faults: list[dict[str, Any]] = field(default_factory=list)
    measures: dict[str, float] = field(default_factory=dict)  # CPU and wall seconds
    people: dict[str, int] = field(default_factory=dict)  # what the people did and met (tally)
