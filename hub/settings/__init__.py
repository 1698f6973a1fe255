"""Hub settings: frozen groups from TOML, overridden by ``LOCKERHUB_HUB_<SECTION>__<KEY>``.

This is the only module that looks at the environment; everything else receives a HubSettings.
Relative paths are taken relative to the working directory.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.errors import ConfigError
from hub.settings.checks import require as _require
from hub.settings.compliance import PartnerSettings, PrivacySettings
from hub.settings.dispatch import DispatchSettings, ZoneExemption, ZoneSettings
from hub.settings.domain import (
    AllocationSettings,
    CommandSettings,
    CourierSettings,
    DeviceConfigSettings,
    IngestSettings,
    LifecycleSettings,
    NotifySettings,
    PickupSettings,
    RegistrySettings,
    ReservationSettings,
    SiteSettings,
)
from hub.settings.inventory import CompartmentSettings, DeviceInventorySettings
from hub.settings.ocpp import OcppSettings
from hub.settings.services import (
    AuthSettings,
    BrokerSettings,
    ClusterSettings,
    GrpcSettings,
    MetricsSettings,
    StorageSettings,
    TokenSettings,
)
from lockerhub.config import build, load_settings

ENV_PREFIX = "LOCKERHUB_HUB_"

__all__ = [
    "ENV_PREFIX",
    "AllocationSettings",
    "AuthSettings",
    "BrokerSettings",
    "ClusterSettings",
    "CommandSettings",
    "CompartmentSettings",
    "CourierSettings",
    "DeviceConfigSettings",
    "DeviceInventorySettings",
    "DispatchSettings",
    "GrpcSettings",
    "HubSettings",
    "IngestSettings",
    "LifecycleSettings",
    "MetricsSettings",
    "NotifySettings",
    "OcppSettings",
    "PartnerSettings",
    "PickupSettings",
    "PrivacySettings",
    "RegistrySettings",
    "ReservationSettings",
    "SiteSettings",
    "StorageSettings",
    "TokenSettings",
    "ZoneExemption",
    "ZoneSettings",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class HubSettings:
    """Everything ``lockerhub hub`` is configured with."""

    broker: BrokerSettings = field(default_factory=BrokerSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    grpc: GrpcSettings = field(default_factory=GrpcSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    commands: CommandSettings = field(default_factory=CommandSettings)
    pickup: PickupSettings = field(default_factory=PickupSettings)
    couriers: CourierSettings = field(default_factory=CourierSettings)
    reservation: ReservationSettings = field(default_factory=ReservationSettings)
    allocation: AllocationSettings = field(default_factory=AllocationSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    lifecycle: LifecycleSettings = field(default_factory=LifecycleSettings)
    device_config: DeviceConfigSettings = field(default_factory=DeviceConfigSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    ocpp: OcppSettings = field(default_factory=OcppSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    partners: PartnerSettings = field(default_factory=PartnerSettings)
    dispatch: DispatchSettings = field(default_factory=DispatchSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    sites: tuple[SiteSettings, ...] = ()
    # Access zones with their delivery windows (docs/dispatch.md).
    zones: tuple[ZoneSettings, ...] = ()
    # The operator's inventory: what each device is and where (docs/hub.md).
    devices: tuple[DeviceInventorySettings, ...] = ()

    def __post_init__(self) -> None:
        if not self.broker.client_id:  # one client id per hub process (docs/guide/city.md)
            broker = dataclasses.replace(
                self.broker, client_id=f"lockerhub-{self.cluster.hub_id}"[:64]
            )
            object.__setattr__(self, "broker", broker)
        ids = [s.id for s in self.sites]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        _require(not dupes, "sites.id", f"duplicate site ids {dupes}")
        devices = [d.id for d in self.devices]
        dupes = sorted({i for i in devices if devices.count(i) > 1})
        _require(not dupes, "devices.id", f"duplicate device ids {dupes}")
        for d in self.devices:
            _require(d.site in ids, f"devices[{d.id}].site", f"{d.site!r} is not a configured site")
        zones = [z.id for z in self.zones]
        dupes = sorted({z for z in zones if zones.count(z) > 1})
        _require(not dupes, "zones.id", f"duplicate zone ids {dupes}")
        for s in self.sites:
            _require(
                not s.zone or s.zone in zones,
                f"sites[{s.id}].zone",
                f"{s.zone!r} is not a configured zone",
            )
        for s in self.sites:
            _require(
                not s.sorting_hub or s.sorting_hub in ids,
                f"sites[{s.id}].sorting_hub",
                f"{s.sorting_hub!r} is not a configured site",
            )

    def sorting_hub(self, site: str) -> str:
        """The site whose sorting lines may sort parcels for ``site`` ("" = none but its own)."""
        return next((s.sorting_hub for s in self.sites if s.id == site), "")

    def deadline_h(self, site: str) -> float:
        """The pickup deadline in hours at ``site`` (its own, else the default)."""
        for s in self.sites:
            if s.id == site and s.pickup_deadline_h > 0:
                return s.pickup_deadline_h
        return self.pickup.deadline_h

    @classmethod
    def load(cls, path: Path | None, env: Mapping[str, str] = os.environ) -> HubSettings:
        """Read ``path`` (TOML; None = defaults only), then apply environment overrides.

        Raises:
            ConfigError: unreadable file, unknown key, wrong type or invalid value (names the key).
        """
        return load_settings(cls, path, env, env_prefix=ENV_PREFIX, error=ConfigError)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> HubSettings:
        """Build settings from a parsed TOML document.

        Raises:
            ConfigError: unknown key, wrong type or invalid value (names the key).
        """
        return build(cls, raw, error=ConfigError)
