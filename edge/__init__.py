"""lockerhub edge: the cabinet and sorting-line agent (drivers, SQLite state and outbox, MQTT).

The Modbus driver is ``edge.modbus.ModbusDriver`` (not imported here: it loads pymodbus).
"""

from edge.agent import AgentStats, EdgeAgent
from edge.cabinet import CompartmentRecord
from edge.errors import (
    CommandError,
    ConfigError,
    DriverError,
    EdgeError,
    LinkError,
    ResendWindowError,
    StorageError,
)
from edge.settings import EdgeSettings
from lockerhub.driver import (
    ChuteChanged,
    CompartmentSpec,
    DoorChanged,
    DropConfirmed,
    HardwareDriver,
    Inducted,
    InputEvent,
    ItemChanged,
    KeypadEntry,
    MeterReading,
    Scanned,
    SizeClass,
    SorterDriver,
)
from lockerhub.states import CompartmentState

__all__ = [
    "AgentStats",
    "ChuteChanged",
    "CommandError",
    "CompartmentRecord",
    "CompartmentSpec",
    "CompartmentState",
    "ConfigError",
    "DoorChanged",
    "DriverError",
    "DropConfirmed",
    "EdgeAgent",
    "EdgeError",
    "EdgeSettings",
    "HardwareDriver",
    "Inducted",
    "InputEvent",
    "ItemChanged",
    "KeypadEntry",
    "LinkError",
    "MeterReading",
    "ResendWindowError",
    "Scanned",
    "SizeClass",
    "SorterDriver",
    "StorageError",
]
