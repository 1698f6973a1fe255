"""Dispatch settings: access zones with their delivery windows, and the planner's constants.

Times of day are ``"HH:MM-HH:MM"`` in the hub's ``dispatch.timezone``; ``24:00`` ends the day.
One window per zone and vehicle class: the routing library gives each stop one window.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass

from hub.errors import ConfigError
from hub.settings.checks import check_id as _check_id
from hub.settings.checks import require as _require

VEHICLE_CLASSES = ("e_bike", "electric_van", "box_vehicle", "combustion_van")
SITE_KINDS = (
    "",
    "housing_estate",
    "campus",
    "business_district",
    "metro_station",
    "service_station",
    "sorting_hub",
)
_WINDOW = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
ALL_DAY = (0.0, 24 * 60.0)


def parse_window(text: str, key: str) -> tuple[float, float]:
    """``"07:30-22:00"`` -> minutes of the day ``(450.0, 1320.0)``.

    Raises:
        ConfigError: naming ``key`` when malformed or empty (start not before end).
    """
    m = _WINDOW.fullmatch(text.strip())
    if m is None:
        raise ConfigError(f'{key}: {text!r} is not a window "HH:MM-HH:MM"')
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    lo, hi = h1 * 60 + m1, h2 * 60 + m2
    if lo > 24 * 60 or hi > 24 * 60:
        raise ConfigError(f"{key}: {text!r} goes past 24:00")
    if lo >= hi:
        raise ConfigError(f"{key}: {text!r} is empty (it must start before it ends)")
    return float(lo), float(hi)


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneExemption:
    """A vehicle class with its own window in a zone (e.g. electric vans all day)."""

    vehicle_class: str
    window: str

    def __post_init__(self) -> None:
        _require(
            self.vehicle_class in VEHICLE_CLASSES,
            "zones.exemptions.vehicle_class",
            f"must be one of {VEHICLE_CLASSES}",
        )
        parse_window(self.window, f"zones.exemptions[{self.vehicle_class}].window")


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneSettings:
    """An access zone (``[[zones]]``): the window delivery vehicles may enter it, with
    exemptions per vehicle class; a vehicle also needs a permit for the zone."""

    id: str
    name: str = ""
    window: str = "00:00-24:00"
    exemptions: tuple[ZoneExemption, ...] = ()

    def __post_init__(self) -> None:
        _check_id(self.id, "zones.id")
        parse_window(self.window, f"zones[{self.id}].window")
        classes = [e.vehicle_class for e in self.exemptions]
        dupes = sorted({c for c in classes if classes.count(c) > 1})
        _require(not dupes, f"zones[{self.id}].exemptions", f"duplicate classes {dupes}")

    def window_for(self, vehicle_class: str) -> tuple[float, float]:
        """The zone's window for a vehicle of ``vehicle_class`` (minutes of the day)."""
        for e in self.exemptions:
            if e.vehicle_class == vehicle_class:
                return parse_window(e.window, "zones.exemptions.window")
        return parse_window(self.window, "zones.window")


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchSettings:
    """How PlanRoutes turns the hub's data into a routing problem (docs/dispatch.md)."""

    # The zone in which site hours and zone windows are written (IANA name).
    timezone: str = "UTC"
    speed_kmh: float = 25.0
    # Road distance over great-circle distance.
    detour: float = 1.3
    # A charging pile whose [[devices]] entry gives no power_kw.
    default_pile_kw: float = 7.0
    # Litres an empty reusable container takes on the way back.
    container_volume_l: float = 60.0
    # Minutes at every stop, plus per parcel delivered or collected.
    service_min: float = 3.0
    service_per_parcel_min: float = 0.25

    def __post_init__(self) -> None:
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"dispatch.timezone: {self.timezone!r} is not a time zone") from exc
        _require(1 <= self.speed_kmh <= 200, "dispatch.speed_kmh", "must be 1-200")
        _require(1 <= self.detour <= 5, "dispatch.detour", "must be 1-5")
        _require(0 < self.default_pile_kw <= 1000, "dispatch.default_pile_kw", "must be 0-1000")
        _require(0 <= self.container_volume_l <= 10_000, "dispatch.container_volume_l", "0-10000")
        _require(0 <= self.service_min <= 240, "dispatch.service_min", "must be 0-240")
        _require(
            0 <= self.service_per_parcel_min <= 60,
            "dispatch.service_per_parcel_min",
            "must be 0-60",
        )
