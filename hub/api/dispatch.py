"""DispatchService servicer."""

from __future__ import annotations

from grpc import aio

from hub.api import convert, validate
from hub.parcels import ParcelService
from lockerhub.v1 import dispatch_pb2, dispatch_pb2_grpc


class DispatchServicer(dispatch_pb2_grpc.DispatchServiceServicer):
    def __init__(self, parcels: ParcelService) -> None:
        self._parcels = parcels

    async def AnnounceParcels(
        self, request: dispatch_pb2.AnnounceParcelsRequest, context: aio.ServicerContext
    ) -> dispatch_pb2.AnnounceParcelsResponse:
        items = validate.announcements(request)
        results = await self._parcels.announce(items)
        return dispatch_pb2.AnnounceParcelsResponse(
            outcomes=[
                dispatch_pb2.AnnounceOutcome(
                    parcel_id=r.parcel_id,
                    accepted=r.accepted,
                    cabinet_id=r.cabinet_id,
                    compartment_id=r.compartment_id,
                    reason=r.reason,
                )
                for r in results
            ]
        )

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
            site=site, state=state, page_size=request.page_size, page_token=request.page_token
        )
        return dispatch_pb2.ListParcelsResponse(
            parcels=[convert.parcel(p) for p in page], next_page_token=token
        )
