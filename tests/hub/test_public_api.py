"""The hub package's public names are deliberate."""

from __future__ import annotations

import hub


def test_public_names() -> None:
    assert sorted(hub.__all__) == [
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
    for name in hub.__all__:
        assert getattr(hub, name) is not None
