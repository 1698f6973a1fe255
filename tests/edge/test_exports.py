"""The public names of edge and firmware_sim are deliberate."""

from __future__ import annotations

import edge
import firmware_sim


def test_edge_public_names() -> None:
    assert sorted(edge.__all__) == edge.__all__
    assert {"EdgeAgent", "EdgeSettings", "HardwareDriver", "EdgeError", "ConfigError"} <= set(
        edge.__all__
    )
    for name in edge.__all__:
        assert getattr(edge, name) is not None


def test_firmware_sim_public_names() -> None:
    assert firmware_sim.__all__ == [
        "ActorResult",
        "ControlClient",
        "ControlError",
        "ControlServer",
        "Fault",
        "SimError",
        "SimulatedCabinet",
        "SimulatedSortingLine",
    ]
