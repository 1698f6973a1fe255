"""DispatchService servicer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from grpc import aio

from hub.api import convert, validate
from hub.api.auth import current_actor, current_carrier
from hub.errors import FailedPrecondition, InvalidArgument
from hub.parcels.announce import ParcelService
from hub.parcels.feed import LiveFeed
from hub.planning.plans import DispatchPlanner, PlanRequest
from hub.planning.routes import DEFAULT_TIME_LIMIT_S, MAX_TIME_LIMIT_S, RoutePlanner
from hub.sorting.plans import SortPlans
from hub.vehicles.model import MAX_MS, MIN_MS
from lockerhub.v1 import dispatch_pb2, dispatch_pb2_grpc


class DispatchServicer(dispatch_pb2_grpc.DispatchServiceServicer):
    def __init__(
        self,
        parcels: ParcelService,
        feed: LiveFeed,
        planner: RoutePlanner | None = None,
        dispatcher: DispatchPlanner | None = None,
        *,
        plans: SortPlans | None = None,
    ) -> None:
        self._plans = plans
        self._parcels = parcels
        self._feed = feed
        self._planner = planner
        self._dispatcher = dispatcher

    async def AnnounceParcels(
        self, request: dispatch_pb2.AnnounceParcelsRequest, context: aio.ServicerContext
    ) -> dispatch_pb2.AnnounceParcelsResponse:
        items = validate.announcements(request)
        results = await self._parcels.announce(items, actor=current_actor())
        response = dispatch_pb2.AnnounceParcelsResponse()
        add = response.outcomes.add  # in place: half the cost of building each, then copying
        for r in results:
            if r.accepted:
                add(
                    parcel_id=r.parcel_id,
                    accepted=True,
                    cabinet_id=r.cabinet_id,
                    compartment_id=r.compartment_id,
                )
            else:
                add(parcel_id=r.parcel_id, reason=r.reason)
        return response

    async def GetParcel(
        self, request: dispatch_pb2.GetParcelRequest, context: aio.ServicerContext
    ) -> dispatch_pb2.Parcel:
        parcel_id = validate.required_id("parcel_id", request.parcel_id)
        return convert.parcel(await self._parcels.get(parcel_id))

    async def ListParcels(
        self, request: dispatch_pb2.ListParcelsRequest, context: aio.ServicerContext
    ) -> dispatch_pb2.ListParcelsResponse:
        site = validate.optional_id("site", request.site)
        state = validate.parcel_state(request.state)
        page, token = await self._parcels.list(
            site=site,
            state=state,
            page_size=request.page_size,
            page_token=request.page_token,
            carrier=current_carrier(),
        )
        return dispatch_pb2.ListParcelsResponse(
            parcels=[convert.parcel(p) for p in page], next_page_token=token
        )

    async def CancelParcel(
        self, request: dispatch_pb2.CancelParcelRequest, context: aio.ServicerContext
    ) -> dispatch_pb2.Parcel:
        parcel_id = validate.required_id("parcel_id", request.parcel_id)
        reason = validate.reason(request.reason, required=False)
        parcel = await self._parcels.cancel(parcel_id, reason=reason, actor=current_actor())
        return convert.parcel(parcel)

    async def ReissuePickupCode(
        self, request: dispatch_pb2.ReissuePickupCodeRequest, context: aio.ServicerContext
    ) -> dispatch_pb2.Parcel:
        parcel_id = validate.required_id("parcel_id", request.parcel_id)
        reason = validate.reason(request.reason, required=True)
        parcel = await self._parcels.reissue_code(parcel_id, reason=reason, actor=current_actor())
        return convert.parcel(parcel)

    async def WithdrawParcel(
        self, request: dispatch_pb2.WithdrawParcelRequest, context: aio.ServicerContext
    ) -> dispatch_pb2.Parcel:
        parcel_id = validate.required_id("parcel_id", request.parcel_id)
        courier = validate.optional_id("courier_id", request.courier_id)
        parcel = await self._parcels.withdraw(parcel_id, courier_id=courier, actor=current_actor())
        return convert.parcel(parcel)

    async def PlanRoutes(
        self, request: dispatch_pb2.PlanRoutesRequest, context: aio.ServicerContext
    ) -> dispatch_pb2.PlanRoutesResponse:
        if self._planner is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "route planning is not enabled")
        assert self._planner is not None
        hub_site = validate.required_id("hub_site", request.hub_site)
        parcel_ids = [validate.required_id("parcel_ids", p) for p in request.parcel_ids]
        limit = _time_limit(request.time_limit_s, context)
        if len(request.exclude_vehicle_ids) > MAX_EXCLUDE:
            raise InvalidArgument(f"exclude_vehicle_ids: at most {MAX_EXCLUDE}")
        if not request.vehicles and self._dispatcher is not None:
            return await self._dispatcher.plan(
                PlanRequest(
                    hub_site=hub_site,
                    start_ms=_start_ms(request.start_ms),
                    time_limit_s=limit,
                    parcel_ids=tuple(parcel_ids),
                    containers=validate.site_counts("empty_containers", request.empty_containers),
                    exclude=frozenset(
                        validate.required_id("exclude_vehicle_ids", v)
                        for v in request.exclude_vehicle_ids[: MAX_EXCLUDE + 1]
                    ),
                ),
                actor=current_actor(),
            )
        if self._dispatcher is not None and self._dispatcher.zones_enabled:
            raise FailedPrecondition(
                "vehicles: this hub has access zones; plan with registered vehicles "
                "(leave vehicles empty) so that permits and zone windows apply"
            )
        vehicles = validate.vehicles(request.vehicles)
        result = await self._planner.plan(hub_site, vehicles, parcel_ids, float(limit))
        if self._plans is not None and result.sort_plan:
            # The routes' chute map becomes the plan of the hub site's lines (hub.sorting.plans).
            await self._plans.apply_route_plan(hub_site, result.sort_plan, actor=current_actor())
        return dispatch_pb2.PlanRoutesResponse(
            routes=[
                dispatch_pb2.VehicleRoute(
                    vehicle_id=r.vehicle_id,
                    distance_km=r.distance_km,
                    stops=[
                        dispatch_pb2.RouteStop(site=site, deliver_parcel_ids=ids)
                        for site, ids in stops
                    ],
                )
                for r, stops in result.routes
            ],
            total_distance_km=result.total_distance_km,
            unrouted_parcel_ids=result.unrouted,
            sort_plan=[
                dispatch_pb2.SortAssignment(destination=d, chute_id=c) for d, c in result.sort_plan
            ],
        )

    async def GetRoutePlan(
        self, request: dispatch_pb2.GetRoutePlanRequest, context: aio.ServicerContext
    ) -> dispatch_pb2.PlanRoutesResponse:
        plan_id = validate.optional_id("plan_id", request.plan_id)
        vehicle_id = validate.optional_id("vehicle_id", request.vehicle_id)
        return await self._require_dispatcher().get(plan_id, vehicle_id)

    async def ReplanRoutes(
        self, request: dispatch_pb2.ReplanRoutesRequest, context: aio.ServicerContext
    ) -> dispatch_pb2.PlanRoutesResponse:
        plan_id = validate.required_id("plan_id", request.plan_id)
        reason = validate.reason(request.reason, required=True)
        ids = request.exclude_vehicle_ids
        if not ids or len(ids) > MAX_EXCLUDE:
            raise InvalidArgument(f"exclude_vehicle_ids: 1-{MAX_EXCLUDE} vehicles are required")
        exclude = [validate.required_id("exclude_vehicle_ids", v) for v in ids]
        limit = _time_limit(request.time_limit_s, context)
        return await self._require_dispatcher().replan(
            plan_id, exclude, reason, limit, actor=current_actor()
        )

    def _require_dispatcher(self) -> DispatchPlanner:
        if self._dispatcher is None:
            raise FailedPrecondition("route planning from registered vehicles is not enabled")
        return self._dispatcher

    async def WatchEvents(
        self, request: dispatch_pb2.WatchEventsRequest, context: aio.ServicerContext
    ) -> AsyncIterator[dispatch_pb2.LiveEvent]:
        site = validate.optional_id("site", request.site)
        after = await self._feed.start(request.cursor)
        async for entry in self._feed.follow(after, site=site, carrier=current_carrier()):
            yield convert.live_event(entry)


MAX_EXCLUDE = 500


def _time_limit(requested: int, context: aio.ServicerContext) -> float:
    if requested > MAX_TIME_LIMIT_S:
        raise InvalidArgument(f"time_limit_s: must be 1-{MAX_TIME_LIMIT_S}")
    limit = float(requested or DEFAULT_TIME_LIMIT_S)
    remaining = context.time_remaining()
    if remaining is not None:  # leave room to answer before the caller's deadline
        limit = min(limit, max(1.0, remaining - 1.0))
    return limit


def _start_ms(value: int) -> int:
    if value == 0:
        return 0  # the planner's clock says when "now" is
    if not MIN_MS <= value <= MAX_MS:
        raise InvalidArgument("start_ms: must be 0 (now) or epoch ms within 2020-2100")
    return value
