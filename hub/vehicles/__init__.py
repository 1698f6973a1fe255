"""The vehicle and e-bike registry: unified ids, classes, zone permits, drivers and insurance."""

from hub.vehicles.model import NEW_ENERGY_NOTE, Vehicle, VehicleClass
from hub.vehicles.registry import VehicleRegistry

__all__ = ["NEW_ENERGY_NOTE", "Vehicle", "VehicleClass", "VehicleRegistry"]
