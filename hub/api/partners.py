"""PartnerService servicer: partner credentials (not operator tokens) and the partner feed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from grpc import aio

from hub.models import ParcelState
from hub.partners.credentials import PartnerBook, PartnerRefused
from hub.partners.feed import FeedItem, PartnerFeed, actor_kind
from lockerhub.v1 import partners_pb2, partners_pb2_grpc

SERVICE = partners_pb2.DESCRIPTOR.services_by_name["PartnerService"].full_name
# A streaming partner's credential is checked again every so many events (and every
# PartnerBook.RECHECK_MS of the clock): revoking it ends its stream at the next event.
_RECHECK_EVERY = 500
_NOTICE_KINDS = {
    "maintenance_scheduled": partners_pb2.NOTICE_KIND_MAINTENANCE_SCHEDULED,
    "maintenance_cancelled": partners_pb2.NOTICE_KIND_MAINTENANCE_CANCELLED,
    "incident_started": partners_pb2.NOTICE_KIND_INCIDENT_STARTED,
    "incident_ended": partners_pb2.NOTICE_KIND_INCIDENT_ENDED,
}


def partner_event(item: FeedItem) -> partners_pb2.PartnerEvent:
    """One feed row as a partner sees it (only the fields listed in partners.proto)."""
    row = item.row
    event = partners_pb2.PartnerEvent(cursor=str(row.cursor), ts_ms=row.ts_ms)
    if row.kind == "parcel":
        event.parcel.CopyFrom(
            partners_pb2.PartnerParcelEvent(
                parcel_id=row.ref,
                state=ParcelState(row.state).to_proto(),
                site=row.site,
                carrier_id=row.carrier,
                actor_kind=actor_kind(row.actor),
            )
        )
        return event
    notice = partners_pb2.ServiceNotice(
        kind=_NOTICE_KINDS.get(row.state, partners_pb2.NOTICE_KIND_UNSPECIFIED),
        ref=row.ref,
        site=row.site,
    )
    if item.window is not None:
        notice.starts_ms, notice.ends_ms = item.window.starts_ms, item.window.ends_ms
        notice.detail = item.window.reason
    elif item.incident is not None:
        notice.starts_ms, notice.detail = item.incident.started_ms, item.incident.cause
        if row.state == "incident_ended":
            notice.ends_ms = item.incident.ended_ms
    event.notice.CopyFrom(notice)
    return event


class PartnerServicer(partners_pb2_grpc.PartnerServiceServicer):
    """Authenticates each call itself (the operator auth interceptor lets this service by)."""

    def __init__(self, book: PartnerBook, feed: PartnerFeed) -> None:
        self._book = book
        self._feed = feed

    async def WatchPartnerFeed(
        self, request: partners_pb2.WatchPartnerFeedRequest, context: aio.ServicerContext
    ) -> AsyncIterator[partners_pb2.PartnerEvent]:
        header = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str):
                header = value
        try:
            partner = await self._book.authenticate(header)
        except PartnerRefused as exc:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
            return
        after = await self._feed.start(request.cursor)
        sent = 0
        async for item in self._feed.follow(after, partner.carriers):
            sent += 1
            if sent % _RECHECK_EVERY == 0 or self._book.stale(partner):
                try:  # revoked or expired while streaming: the stream ends
                    partner = await self._book.recheck(partner)
                except PartnerRefused as exc:
                    await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
                    return
            yield partner_event(item)
