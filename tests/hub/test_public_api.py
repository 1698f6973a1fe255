"""The hub package's public names are deliberate, resolve to their defining modules, and load
lazily: ``import hub`` alone loads neither gRPC nor OCPP."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import hub

PUBLIC = {
    "BrokerError": "hub.errors",
    "CommandTimeout": "hub.errors",
    "ConfigError": "hub.errors",
    "Conflict": "hub.errors",
    "DeviceUnavailable": "hub.errors",
    "FailedPrecondition": "hub.errors",
    "FileNotifier": "hub.parcels.notify",
    "HubApp": "hub.app",
    "HubError": "hub.errors",
    "HubSettings": "hub.settings",
    "IllegalTransition": "hub.errors",
    "InvalidArgument": "hub.errors",
    "NotFound": "hub.errors",
    "Notifier": "hub.parcels.notify",
    "PickupNotice": "hub.parcels.notify",
    "RequestError": "hub.errors",
    "StoreError": "hub.errors",
}


def test_public_names_are_exactly_these() -> None:
    assert hub.__all__ == sorted(PUBLIC)


@pytest.mark.parametrize(("name", "module"), sorted(PUBLIC.items()))
def test_each_name_is_the_object_its_module_defines(name: str, module: str) -> None:
    obj = getattr(hub, name)
    assert obj is getattr(importlib.import_module(module), name)
    assert obj.__module__ == module


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Store'"):
        _ = hub.Store  # type: ignore[attr-defined]


def test_import_hub_loads_no_component() -> None:
    code = "import json, sys, hub; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out))
    assert "hub" in loaded
    heavy = {
        m for m in loaded if m.split(".")[0] in {"grpc", "aiosqlite", "paho", "prometheus_client"}
    }
    assert not heavy, heavy
    assert not {m for m in loaded if m.startswith("hub.")}, "import hub loaded a submodule"
