"""lockerhub firmware_sim: simulated cabinets with fault injection, and their control protocol."""

from firmware_sim.cabinet import ActorResult, Fault, SimulatedCabinet
from firmware_sim.control import ControlClient, ControlServer
from firmware_sim.errors import ControlError, SimError

__all__ = [
    "ActorResult",
    "ControlClient",
    "ControlError",
    "ControlServer",
    "Fault",
    "SimError",
    "SimulatedCabinet",
]
