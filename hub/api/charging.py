"""FleetService charging RPCs (ListChargingPiles, RemoteStart/StopCharging) over the OCPP system.

FleetServicer inherits :class:`ChargingRpcs`; the class also serves on its own (tests). Errors are
hub.errors, mapped to status codes by the DomainErrorInterceptor.
"""

from __future__ import annotations

from grpc import aio

from hub.api import validate
from hub.errors import DeviceUnavailable, InvalidArgument
from hub.ocpp import CentralSystem, PileState
from lockerhub.v1 import fleet_pb2


def pile_message(pile: PileState) -> fleet_pb2.ChargingPile:
    return fleet_pb2.ChargingPile(
        pile_id=pile.pile_id,
        site=pile.site,
        online=pile.online,
        vendor=pile.vendor,
        model=pile.model,
        energy_wh=pile.energy_wh,
        connectors=[
            fleet_pb2.ChargingConnector(
                connector_id=cid,
                status=c.status,
                power_w=c.power_w,
                session_energy_wh=c.session_energy_wh,
                transaction_id=c.transaction_id,
            )
            for cid, c in sorted(pile.connectors.items())
            if cid != 0
        ],
    )


class ChargingRpcs:
    """The charging part of FleetService; ``charging`` is None when [ocpp] is disabled."""

    def __init__(self, charging: CentralSystem | None) -> None:
        self._charging = charging

    def _system(self) -> CentralSystem:
        if self._charging is None:
            raise DeviceUnavailable("charging piles are not enabled on this hub ([ocpp] enabled)")
        return self._charging

    async def ListChargingPiles(
        self, request: fleet_pb2.ListChargingPilesRequest, context: aio.ServicerContext
    ) -> fleet_pb2.ListChargingPilesResponse:
        site = validate.optional_id("site", request.site)
        if self._charging is None:
            return fleet_pb2.ListChargingPilesResponse()
        return fleet_pb2.ListChargingPilesResponse(
            piles=[pile_message(p) for p in self._charging.piles(site)]
        )

    async def RemoteStartCharging(
        self, request: fleet_pb2.RemoteStartChargingRequest, context: aio.ServicerContext
    ) -> fleet_pb2.RemoteChargingResponse:
        pile_id = validate.required_id("pile_id", request.pile_id)
        status = await self._system().remote_start(pile_id, request.connector_id, request.id_tag)
        return fleet_pb2.RemoteChargingResponse(accepted=status == "Accepted", status=status)

    async def RemoteStopCharging(
        self, request: fleet_pb2.RemoteStopChargingRequest, context: aio.ServicerContext
    ) -> fleet_pb2.RemoteChargingResponse:
        pile_id = validate.required_id("pile_id", request.pile_id)
        if request.transaction_id <= 0:
            raise InvalidArgument("transaction_id must be > 0")
        status = await self._system().remote_stop(pile_id, request.transaction_id)
        return fleet_pb2.RemoteChargingResponse(accepted=status == "Accepted", status=status)
