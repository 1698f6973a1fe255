"""SortingService servicer: sort plans, screening holds, reusable containers."""

from __future__ import annotations

from grpc import aio

from hub.api import validate
from hub.api.auth import current_actor
from hub.errors import InvalidArgument, NotFound
from hub.sorting.containers import Containers
from hub.sorting.plans import PlanInfo, SortPlans
from hub.sorting.screening import Screening
from hub.store.repo.containers import ContainerRow
from hub.store.repo.sorting import ScreeningRow
from lockerhub.codec import validate_container_moved
from lockerhub.errors import PayloadError
from lockerhub.v1 import sorting_pb2, sorting_pb2_grpc


def _plan(info: PlanInfo) -> sorting_pb2.SortPlan:
    p = info.plan
    return sorting_pb2.SortPlan(
        line_id=p.line,
        version=p.version,
        rules=[sorting_pb2.SortPlanRule(destination=d, chute_id=c) for d, c in p.rules],
        exception_chute=p.exception_chute,
        hold_chute=p.hold_chute,
        applied_version=info.applied_version,
        updated_ms=p.created_ms,
        actor=p.actor,
    )


def _screening(r: ScreeningRow) -> sorting_pb2.Screening:
    return sorting_pb2.Screening(
        parcel_id=r.parcel_id,
        status=r.status,
        reason=r.reason,
        station_id=r.station,
        screened_ms=r.screened_ms,
        released_by=r.released_by,
        release_reason=r.release_reason,
    )


def _container(c: ContainerRow, parcel_ids: list[str]) -> sorting_pb2.Container:
    return sorting_pb2.Container(
        container_id=c.container_id,
        type=sorting_pb2.ContainerType.Value(f"CONTAINER_TYPE_{c.type.upper()}"),
        state=c.state,
        site=c.site,
        vehicle_id=c.vehicle,
        cycles=c.cycles,
        parcel_ids=parcel_ids,
        last_seen_ms=c.last_seen_ms,
    )


class SortingServicer(sorting_pb2_grpc.SortingServiceServicer):
    def __init__(self, plans: SortPlans, screening: Screening, containers: Containers) -> None:
        self._plans = plans
        self._screening = screening
        self._containers = containers

    async def SetSortPlan(
        self, request: sorting_pb2.SetSortPlanRequest, context: aio.ServicerContext
    ) -> sorting_pb2.SortPlan:
        line = validate.required_id("line_id", request.line_id)
        rules = [
            (
                validate.required_id("rules.destination", r.destination),
                validate.required_id("rules.chute_id", r.chute_id),
            )
            for r in request.rules
        ]
        exception = validate.optional_id("exception_chute", request.exception_chute)
        hold = validate.optional_id("hold_chute", request.hold_chute)
        info = await self._plans.set_plan(
            line, rules, exception_chute=exception, hold_chute=hold, actor=current_actor()
        )
        return _plan(info)

    async def GetSortPlan(
        self, request: sorting_pb2.GetSortPlanRequest, context: aio.ServicerContext
    ) -> sorting_pb2.SortPlan:
        return _plan(await self._plans.get(validate.required_id("line_id", request.line_id)))

    async def ReleaseParcel(
        self, request: sorting_pb2.ReleaseParcelRequest, context: aio.ServicerContext
    ) -> sorting_pb2.Screening:
        parcel_id = validate.required_id("parcel_id", request.parcel_id)
        reason = validate.reason(request.reason, required=True)
        row = await self._screening.release(parcel_id, reason=reason, actor=current_actor())
        return _screening(row)

    async def GetScreening(
        self, request: sorting_pb2.GetScreeningRequest, context: aio.ServicerContext
    ) -> sorting_pb2.Screening:
        parcel_id = validate.required_id("parcel_id", request.parcel_id)
        return _screening(await self._screening.get(parcel_id))

    async def RecordContainer(
        self, request: sorting_pb2.RecordContainerRequest, context: aio.ServicerContext
    ) -> sorting_pb2.Container:
        move = request.move
        try:
            validate_container_moved(move)
        except PayloadError as exc:
            raise InvalidArgument(str(exc)) from exc
        validate.required_id("move.container_id", move.container_id)
        validate.required_id("move.site", move.site)
        row = await self._containers.record(move, actor=current_actor())
        return _container(row, await self._containers.contents(row.container_id))

    async def GetContainer(
        self, request: sorting_pb2.GetContainerRequest, context: aio.ServicerContext
    ) -> sorting_pb2.Container:
        cid = validate.required_id("container_id", request.container_id)
        row = await self._containers.get(cid)
        if row is None:
            raise NotFound(f"container {cid!r} not found")
        return _container(row, await self._containers.contents(cid))
