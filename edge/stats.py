"""The agent's counters, shared by its collaborators (logs, status, tests)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class AgentStats:
    """Counters for logs, status and (later) metrics."""

    connects: int = 0
    connect_failures: int = 0
    commands: int = 0
    duplicate_commands: int = 0
    scans_refused: int = 0
    input_errors: int = 0
    desired_applied: int = 0
    desired_ignored: int = 0
    sensor_faults: int = 0
    dead_boards: int = 0
    telemetry_coalesced: int = 0
    housekeeping_sweeps: int = 0
    dropped_commands: dict[str, int] = field(default_factory=dict)
    # Restarts of supervised loops by loop name (a loop raised and was started again).
    loop_restarts: dict[str, int] = field(default_factory=dict)
