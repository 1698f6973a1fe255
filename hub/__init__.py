"""lockerhub hub: MQTT ingestion, parcel lifecycle, commands, the operator gRPC API and /metrics.

Subpackages read as the architecture: ``store`` (all SQL), ``mqtt``, ``ingest``, ``parcels``,
``devices``, ``planning``, ``vehicles``, ``api`` (gRPC), ``ocpp``, ``metrics``, ``broker``; ``app``
composes them.
Names are loaded on first use, so ``lockerhub devices`` does not load gRPC or OCPP.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from hub.parcels.notify import FileNotifier, Notifier, PickupNotice
    from hub.settings import HubSettings

_WHERE = {
    "HubApp": "hub.app",
    "HubSettings": "hub.settings",
    "FileNotifier": "hub.parcels.notify",
    "Notifier": "hub.parcels.notify",
    "PickupNotice": "hub.parcels.notify",
    **dict.fromkeys(
        (
            "BrokerError",
            "CommandTimeout",
            "ConfigError",
            "Conflict",
            "DeviceUnavailable",
            "FailedPrecondition",
            "HubError",
            "IllegalTransition",
            "InvalidArgument",
            "NotFound",
            "RequestError",
            "StoreError",
        ),
        "hub.errors",
    ),
}

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


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first use (PEP 562)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'hub' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
