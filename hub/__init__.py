"""lockerhub hub: MQTT ingestion, parcel lifecycle, commands, the operator gRPC API and /metrics."""

from hub.app import HubApp
from hub.errors import (
    BrokerError,
    CommandTimeout,
    ConfigError,
    Conflict,
    DeviceUnavailable,
    FailedPrecondition,
    HubError,
    IllegalTransition,
    InvalidArgument,
    NotFound,
    RequestError,
    StoreError,
)
from hub.notify import FileNotifier, Notifier, PickupNotice
from hub.settings import HubSettings

__all__ = [
    "BrokerError",
    "CommandTimeout",
    "ConfigError",
    "Conflict",
    "DeviceUnavailable",
    "FailedPrecondition",
    "FileNotifier",
    "HubApp",
    "HubError",
    "HubSettings",
    "IllegalTransition",
    "InvalidArgument",
    "NotFound",
    "Notifier",
    "PickupNotice",
    "RequestError",
    "StoreError",
]
