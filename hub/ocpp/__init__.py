"""OCPP 1.6J central system for charging piles (the ``ocpp`` package over ``websockets``)."""

from hub.ocpp.server import SUBPROTOCOL, CentralSystem
from hub.ocpp.state import ChargingCollector, ConnectorState, PileState

__all__ = ["SUBPROTOCOL", "CentralSystem", "ChargingCollector", "ConnectorState", "PileState"]
