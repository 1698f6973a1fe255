"""The operator's device inventory in the hub's settings: ``[[devices]]`` with their layouts.

Part of :class:`hub.settings.HubSettings`, which validates the sites they name.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.errors import ConfigError
from hub.settings.checks import check_id as _check_id
from hub.settings.checks import require as _require
from lockerhub.layout import parse_layout

_DEVICE_KINDS = ("cabinet", "sorting_line", "charging_pile", "screening_station")
_SIZES = ("XS", "S", "M", "L", "XL")


@dataclass(frozen=True, slots=True, kw_only=True)
class CompartmentSettings:
    """One compartment of an explicit ``[[devices.compartments]]`` layout (millimetres, grams)."""

    id: str
    size: str
    width_mm: int
    height_mm: int
    depth_mm: int
    max_weight_g: int = 25_000
    zone: str = "ambient"

    def __post_init__(self) -> None:
        key = f"devices.compartments[{self.id}]"
        _check_id(self.id, "devices.compartments.id")
        _require(self.size in _SIZES, f"{key}.size", f"must be one of {_SIZES}")
        for name in ("width_mm", "height_mm", "depth_mm"):
            _require(0 < getattr(self, name) <= 5000, f"{key}.{name}", "must be 1-5000")
        _require(0 < self.max_weight_g <= 200_000, f"{key}.max_weight_g", "must be 1-200000")
        _require(self.zone in ("ambient", "chilled"), f"{key}.zone", 'must be "ambient"/"chilled"')


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceInventorySettings:
    """One provisioned device (``[[devices]]``): its site, its kind and, for a cabinet, the
    compartment layout its births must confirm (docs/hub.md "Compartment layouts")."""

    id: str
    site: str
    kind: str = "cabinet"
    # Compact layout, expanded like the edge's [[driver.compartments]]: "S:6,M:4,L:2".
    layout: str = ""
    # Or every compartment spelled out.
    compartments: tuple[CompartmentSettings, ...] = ()

    def __post_init__(self) -> None:
        _check_id(self.id, "devices.id")
        _check_id(self.site, f"devices[{self.id}].site")
        key = f"devices[{self.id}]"
        _require(self.kind in _DEVICE_KINDS, f"{key}.kind", f"must be one of {_DEVICE_KINDS}")
        has_layout = bool(self.layout) or bool(self.compartments)
        if self.kind != "cabinet":
            _require(not has_layout, f"{key}.layout", f"a {self.kind} has no compartments")
            return
        _require(
            bool(self.layout) != bool(self.compartments),
            f"{key}.layout",
            "a cabinet needs exactly one of layout or compartments",
        )
        if self.layout:
            try:
                parse_layout(self.layout)
            except ValueError as exc:
                raise ConfigError(f"{key}.layout: {exc}") from exc
        ids = [c.id for c in self.compartments]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        _require(not dupes, f"{key}.compartments.id", f"duplicate compartment ids {dupes}")
