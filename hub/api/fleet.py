"""FleetService servicer (the charging RPCs come from :class:`hub.api.charging.ChargingRpcs`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from grpc import aio

from hub.api import convert, validate
from hub.api.auth import current_actor
from hub.api.charging import ChargingRpcs
from hub.devices.alarms import AlarmService
from hub.devices.fleet import FleetService
from lockerhub.v1 import fleet_pb2, fleet_pb2_grpc

if TYPE_CHECKING:
    from hub.ocpp import CentralSystem


class FleetServicer(ChargingRpcs, fleet_pb2_grpc.FleetServiceServicer):
    def __init__(
        self, fleet: FleetService, alarms: AlarmService, charging: CentralSystem | None = None
    ) -> None:
        super().__init__(charging)
        self._fleet = fleet
        self._alarms = alarms

    async def ListSites(
        self, request: fleet_pb2.ListSitesRequest, context: aio.ServicerContext
    ) -> fleet_pb2.ListSitesResponse:
        return fleet_pb2.ListSitesResponse(
            sites=[convert.site(s) for s in await self._fleet.list_sites()]
        )

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
            actor=current_actor(),
        )
        return fleet_pb2.OpenCompartmentResponse(
            command_id=result.command_id,
            outcome=result.outcome,
            relay_fired=result.relay_fired,
            detail=result.detail,
        )

    async def SetCompartmentEnabled(
        self, request: fleet_pb2.SetCompartmentEnabledRequest, context: aio.ServicerContext
    ) -> fleet_pb2.Compartment:
        validate.compartment_ref(request.cabinet_id, request.compartment_id)
        reason = validate.reason(request.reason, required=not request.enabled)
        compartment = await self._fleet.set_compartment_enabled(
            request.cabinet_id,
            request.compartment_id,
            enabled=request.enabled,
            reason=reason,
            actor=current_actor(),
        )
        return convert.compartment(compartment)

    async def ListAlarms(
        self, request: fleet_pb2.ListAlarmsRequest, context: aio.ServicerContext
    ) -> fleet_pb2.ListAlarmsResponse:
        site = validate.optional_id("site", request.site)
        alarms = await self._alarms.list(site=site, include_cleared=request.include_cleared)
        return fleet_pb2.ListAlarmsResponse(alarms=[convert.alarm(a) for a in alarms])

    async def AcknowledgeAlarm(
        self, request: fleet_pb2.AlarmActionRequest, context: aio.ServicerContext
    ) -> fleet_pb2.Alarm:
        alarm_id = validate.alarm_id(request.alarm_id)
        validate.reason(request.note, required=False, field="note")
        return convert.alarm(await self._alarms.acknowledge(alarm_id, actor=current_actor()))

    async def ClearAlarm(
        self, request: fleet_pb2.AlarmActionRequest, context: aio.ServicerContext
    ) -> fleet_pb2.Alarm:
        alarm_id = validate.alarm_id(request.alarm_id)
        validate.reason(request.note, required=False, field="note")
        return convert.alarm(await self._alarms.clear(alarm_id, actor=current_actor()))
