"""FleetService servicer."""

from __future__ import annotations

from grpc import aio

from hub.api import convert, validate
from hub.fleet import FleetService
from lockerhub.v1 import fleet_pb2, fleet_pb2_grpc


class FleetServicer(fleet_pb2_grpc.FleetServiceServicer):
    def __init__(self, fleet: FleetService) -> None:
        self._fleet = fleet

    async def ListCabinets(
        self, request: fleet_pb2.ListCabinetsRequest, context: aio.ServicerContext
    ) -> fleet_pb2.ListCabinetsResponse:
        site = validate.optional_id("site", request.site)
        cabinets = await self._fleet.list_cabinets(site)
        return fleet_pb2.ListCabinetsResponse(
            cabinets=[convert.cabinet(c, online=self._fleet.available(c)) for c in cabinets]
        )

    async def GetCabinet(
        self, request: fleet_pb2.GetCabinetRequest, context: aio.ServicerContext
    ) -> fleet_pb2.Cabinet:
        cabinet_id = validate.required_id("cabinet_id", request.cabinet_id)
        cabinet = await self._fleet.get_cabinet(cabinet_id)
        return convert.cabinet(cabinet, online=self._fleet.available(cabinet))

    async def OpenCompartment(
        self, request: fleet_pb2.OpenCompartmentRequest, context: aio.ServicerContext
    ) -> fleet_pb2.OpenCompartmentResponse:
        validate.open_request(request)
        result = await self._fleet.open_compartment(
            request.cabinet_id,
            request.compartment_id,
            reason=request.reason.strip(),
            ttl_s=request.ttl_seconds,
            actor="operator",
        )
        return fleet_pb2.OpenCompartmentResponse(
            command_id=result.command_id,
            outcome=result.outcome,
            relay_fired=result.relay_fired,
            detail=result.detail,
        )
