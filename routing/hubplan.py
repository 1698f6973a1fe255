"""Build a ``RoutingProblem`` from hub-like data: locker sites, fleet, charging piles, zones."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from routing.allocation import AllocationProblem, AllocationResult
from routing.errors import ProblemError
from routing.geo import haversine_m
from routing.problem import RoutingProblem

__all__ = ["ChargingPile", "Depot", "Fleet", "StopSite", "build_problem", "stops_from_allocation"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Depot:
    """The sorting hub vehicles leave from; times are minutes of the day."""

    id: str
    lat: float
    lon: float
    open_min: float = 0.0
    close_min: float = 24 * 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class StopSite:
    """A locker site to serve: parcels to drop, returns and empty containers to collect."""

    id: str
    lat: float
    lon: float
    parcels: int = 0
    volume_l: float = 0.0
    returns: int = 0
    returns_volume_l: float = 0.0
    containers: int = 0
    open_min: float = 0.0
    close_min: float = 24 * 60.0
    zone: str | None = None
    service_min: float = 3.0

    def __post_init__(self) -> None:
        for key in (
            "parcels",
            "volume_l",
            "returns",
            "returns_volume_l",
            "containers",
            "service_min",
        ):
            if getattr(self, key) < 0:
                raise ProblemError(f"sites[{self.id}].{key}", "must be >= 0")
        if self.open_min > self.close_min:
            raise ProblemError(f"sites[{self.id}].open_min", "opens after it closes")


@dataclass(frozen=True, slots=True, kw_only=True)
class Fleet:
    """A group of identical vehicles; ``battery_kwh=None`` for a vehicle without battery."""

    name: str
    count: int
    parcels: int
    volume_l: float
    battery_kwh: float | None = None
    kwh_per_km: float = 0.0
    fixed_cost_km: float = 0.0

    def __post_init__(self) -> None:
        if self.count < 0 or self.parcels < 0 or self.volume_l < 0:
            raise ProblemError(f"fleet[{self.name}]", "count and capacities must be >= 0")
        if self.battery_kwh is not None and not (self.battery_kwh > 0 and self.kwh_per_km > 0):
            raise ProblemError(
                f"fleet[{self.name}].battery_kwh",
                "electric vehicles need battery and kwh_per_km > 0",
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargingPile:
    """A charging pile vehicles may stop at; charging time is energy / power."""

    id: str
    lat: float
    lon: float
    power_kw: float

    def __post_init__(self) -> None:
        if not self.power_kw > 0:
            raise ProblemError(f"piles[{self.id}].power_kw", "must be > 0")


def build_problem(
    depot: Depot,
    sites: Sequence[StopSite],
    fleet: Sequence[Fleet],
    *,
    piles: Sequence[ChargingPile] = (),
    zone_windows: Mapping[str, tuple[float, float]] | None = None,
    speed_kmh: float = 25.0,
    detour: float = 1.3,
    container_volume_l: float = 60.0,
    service_per_parcel_min: float = 0.25,
) -> RoutingProblem:
    """Stops, vehicles and piles as a ``RoutingProblem`` in km and minutes.

    Distances are great-circle kilometres times ``detour``; a stop's window is the site's hours
    intersected with its zone's permitted window for delivery vehicles; loads have two dimensions,
    parcels (returns and containers count as parcels) and litres.

    Raises:
        ProblemError: a site's window is empty after the zone restriction, or data is invalid.
    """
    zone_windows = zone_windows or {}
    if not speed_kmh > 0:
        raise ProblemError("speed_kmh", "must be > 0")
    nodes_lat = [depot.lat, *(s.lat for s in sites), *(p.lat for p in piles)]
    nodes_lon = [depot.lon, *(s.lon for s in sites), *(p.lon for p in piles)]
    lat, lon = np.array(nodes_lat), np.array(nodes_lon)
    km = haversine_m(lat[:, None], lon[:, None], lat[None, :], lon[None, :]) / 1000.0 * detour
    n = len(nodes_lat)
    early = np.zeros(n)
    late = np.zeros(n)
    early[0], late[0] = depot.open_min, depot.close_min
    service = np.zeros(n)
    deliv = np.zeros((n, 2))
    pick = np.zeros((n, 2))
    for i, s in enumerate(sites, 1):
        lo, hi = s.open_min, s.close_min
        if s.zone is not None:
            if s.zone not in zone_windows:
                raise ProblemError(f"sites[{s.id}].zone", f"no access window for zone {s.zone!r}")
            zlo, zhi = zone_windows[s.zone]
            lo, hi = max(lo, zlo), min(hi, zhi)
        if lo > hi:
            raise ProblemError(f"sites[{s.id}].zone", "site hours and zone window do not overlap")
        early[i], late[i] = lo, hi
        service[i] = s.service_min + service_per_parcel_min * (s.parcels + s.returns)
        deliv[i] = (s.parcels, s.volume_l)
        pick[i] = (s.returns + s.containers, s.returns_volume_l + s.containers * container_volume_l)
    rate = np.zeros(n)
    st = np.zeros(n, np.bool_)
    for j, p in enumerate(piles, 1 + len(sites)):
        early[j], late[j] = depot.open_min, depot.close_min
        st[j] = True
        rate[j] = 60.0 / p.power_kw  # minutes per kWh
    if not fleet:
        raise ProblemError("fleet", "needs at least one vehicle group")
    return RoutingProblem(
        name="hub",
        labels=(depot.id, *(s.id for s in sites), *(p.id for p in piles)),
        coords=np.column_stack([lat, lon]),
        dist=km,
        ttime=km / speed_kmh * 60.0,
        early=early,
        late=late,
        service=service,
        delivery=deliv,
        pickup=pick,
        is_station=st,
        station_rate=rate,
        veh_capacity=np.array([[f.parcels, f.volume_l] for f in fleet], np.float64),
        veh_battery=np.array(
            [f.battery_kwh if f.battery_kwh is not None else math.inf for f in fleet]
        ),
        veh_consumption=np.array([f.kwh_per_km for f in fleet]),
        veh_count=np.array([f.count for f in fleet]),
        veh_fixed_cost=np.array([f.fixed_cost_km for f in fleet]),
    )


def stops_from_allocation(
    problem: AllocationProblem,
    result: AllocationResult,
    *,
    open_min: float = 0.0,
    close_min: float = 24 * 60.0,
    zones: Mapping[str, str] | None = None,
) -> list[StopSite]:
    """One stop per locker site that received parcels: the allocator's output becomes stops.

    ``zones`` maps a site id to its access zone (for ``zone_windows`` in ``build_problem``).
    """
    a = result.assignments
    placed = np.flatnonzero(a >= 0)
    sites = problem.comp_site[a[placed]]
    vol = np.prod(problem.parcel_dims[placed], axis=1) / 1e6
    counts = np.bincount(sites, minlength=len(problem.site_ids))
    litres = np.bincount(sites, weights=vol, minlength=len(problem.site_ids))
    zones = zones or {}
    return [
        StopSite(
            id=problem.site_ids[s],
            lat=float(problem.site_lat[s]),
            lon=float(problem.site_lon[s]),
            parcels=int(counts[s]),
            volume_l=float(litres[s]),
            open_min=open_min,
            close_min=close_min,
            zone=zones.get(problem.site_ids[s]),
        )
        for s in np.flatnonzero(counts).tolist()
    ]
