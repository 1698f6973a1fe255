"""lockerhub firmware_sim: simulated cabinets and sorting lines with fault injection.

Also ``firmware_sim.modbus_server`` (a cabinet as Modbus TCP boards), ``demo.fleet`` (many
cabinets in one process) and ``firmware_sim.charge_point`` (OCPP 1.6J charge points), imported on
demand so that an edge agent using the simulator does not load Modbus, OCPP or websockets.
"""

from firmware_sim.cabinet import ActorResult, Fault, SimulatedCabinet
from firmware_sim.control import ControlClient, ControlServer
from firmware_sim.errors import ControlError, SimError
from firmware_sim.sorting_line import SimulatedSortingLine

__all__ = [
    "ActorResult",
    "ControlClient",
    "ControlError",
    "ControlServer",
    "Fault",
    "SimError",
    "SimulatedCabinet",
    "SimulatedSortingLine",
]
