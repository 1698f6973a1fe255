"""VehicleService: register, update, retire, get and list vehicles and e-bikes."""

from __future__ import annotations

from grpc import aio

from hub.api import validate
from hub.errors import InvalidArgument
from hub.vehicles import VehicleClass, VehicleRegistry
from hub.vehicles.model import from_proto, to_proto
from lockerhub.v1 import vehicles_pb2, vehicles_pb2_grpc


class VehicleServicer(vehicles_pb2_grpc.VehicleServiceServicer):
    def __init__(self, registry: VehicleRegistry) -> None:
        self._registry = registry

    async def RegisterVehicle(
        self, request: vehicles_pb2.RegisterVehicleRequest, context: aio.ServicerContext
    ) -> vehicles_pb2.RegisteredVehicle:
        return to_proto(await self._registry.register(from_proto(request.vehicle)))

    async def UpdateVehicle(
        self, request: vehicles_pb2.UpdateVehicleRequest, context: aio.ServicerContext
    ) -> vehicles_pb2.RegisteredVehicle:
        return to_proto(await self._registry.update(from_proto(request.vehicle)))

    async def RetireVehicle(
        self, request: vehicles_pb2.RetireVehicleRequest, context: aio.ServicerContext
    ) -> vehicles_pb2.RegisteredVehicle:
        vehicle_id = validate.required_id("vehicle_id", request.vehicle_id)
        reason = validate.reason(request.reason, required=True)
        return to_proto(await self._registry.retire(vehicle_id, reason))

    async def GetVehicle(
        self, request: vehicles_pb2.GetVehicleRequest, context: aio.ServicerContext
    ) -> vehicles_pb2.RegisteredVehicle:
        vehicle_id = validate.required_id("vehicle_id", request.vehicle_id)
        return to_proto(await self._registry.get(vehicle_id))

    async def ListVehicles(
        self, request: vehicles_pb2.ListVehiclesRequest, context: aio.ServicerContext
    ) -> vehicles_pb2.ListVehiclesResponse:
        vclass = None
        if request.vehicle_class:
            try:
                vclass = VehicleClass.from_proto(request.vehicle_class)
            except ValueError as exc:
                raise InvalidArgument(f"vehicle_class: {exc}") from None
        depot = validate.optional_id("depot_site", request.depot_site)
        found = await self._registry.list(
            vehicle_class=vclass, depot=depot, include_retired=request.include_retired
        )
        return vehicles_pb2.ListVehiclesResponse(vehicles=[to_proto(v) for v in found])
