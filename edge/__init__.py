"""lockerhub edge: the cabinet agent (driver interface, SQLite state and outbox, MQTT link)."""

from edge.agent import AgentStats, EdgeAgent
from edge.cabinet import CompartmentRecord, CompartmentState
from edge.driver import (
    CompartmentSpec,
    DoorChanged,
    HardwareDriver,
    InputEvent,
    ItemChanged,
    KeypadEntry,
    MeterReading,
    Scanned,
    SizeClass,
)
from edge.errors import ConfigError, DriverError, EdgeError, LinkError, StorageError
from edge.settings import EdgeSettings

__all__ = [
    "AgentStats",
    "CompartmentRecord",
    "CompartmentSpec",
    "CompartmentState",
    "ConfigError",
    "DoorChanged",
    "DriverError",
    "EdgeAgent",
    "EdgeError",
    "EdgeSettings",
    "HardwareDriver",
    "InputEvent",
    "ItemChanged",
    "KeypadEntry",
    "LinkError",
    "MeterReading",
    "Scanned",
    "SizeClass",
    "StorageError",
]
