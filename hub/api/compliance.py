"""ComplianceService servicer: partners, maintenance, incidents, the personal-data audit, site
filings and the regulator export (operator tokens; roles in hub.api.auth)."""

from __future__ import annotations

from dataclasses import dataclass

from grpc import aio

from hub.api import validate
from hub.api.auth import current_actor
from hub.errors import InvalidArgument, NotFound
from hub.partners.credentials import PartnerBook
from hub.partners.notices import Incidents, Maintenance
from hub.privacy.audit import PersonalData
from hub.reporting import export
from hub.store import Store
from hub.store.repo import devices as devices_repo
from hub.store.repo import reporting as reporting_repo
from hub.store.repo.partners import PartnerRow, Window
from lockerhub.clock import Clock
from lockerhub.v1 import partners_pb2, partners_pb2_grpc

_MAX_TIME_MS = 4_102_444_800_000  # 2100-01-01


@dataclass(frozen=True, slots=True, kw_only=True)
class Compliance:
    """What the servicer serves from."""

    store: Store
    clock: Clock
    partners: PartnerBook
    maintenance: Maintenance
    incidents: Incidents
    personal_data: PersonalData


def _partner(p: PartnerRow) -> partners_pb2.Partner:
    return partners_pb2.Partner(
        partner_id=p.id,
        name=p.name,
        carrier_ids=p.carriers,
        expires_ms=p.expires_ms,
        revoked=p.revoked,
        created_ms=p.created_ms,
    )


def _window(w: Window) -> partners_pb2.MaintenanceWindow:
    return partners_pb2.MaintenanceWindow(
        window_id=str(w.id),
        site=w.site,
        starts_ms=w.starts_ms,
        ends_ms=w.ends_ms,
        reason=w.reason,
        scheduled_by=w.scheduled_by,
        scheduled_ms=w.scheduled_ms,
        cancelled=w.cancelled,
    )


def _time(field: str, value: int, *, zero_ok: bool = True) -> int:
    if not (0 if zero_ok else 1) <= value <= _MAX_TIME_MS:
        raise InvalidArgument(f"{field}: must be epoch milliseconds before 2100")
    return value


class ComplianceServicer(partners_pb2_grpc.ComplianceServiceServicer):
    def __init__(self, c: Compliance) -> None:
        self._c = c

    async def CreatePartner(
        self, request: partners_pb2.CreatePartnerRequest, context: aio.ServicerContext
    ) -> partners_pb2.CreatePartnerResponse:
        partner_id = validate.required_id("partner_id", request.partner_id)
        name = validate.reason(request.name, required=True, field="name")
        carriers = [validate.required_id("carrier_ids", c) for c in request.carrier_ids[:101]]
        expires = _time("expires_ms", request.expires_ms)
        row, secret = await self._c.partners.create(partner_id, name, carriers, expires)
        return partners_pb2.CreatePartnerResponse(partner=_partner(row), secret=secret)

    async def RevokePartner(
        self, request: partners_pb2.RevokePartnerRequest, context: aio.ServicerContext
    ) -> partners_pb2.Partner:
        partner_id = validate.required_id("partner_id", request.partner_id)
        return _partner(await self._c.partners.revoke(partner_id))

    async def ListPartners(
        self, request: partners_pb2.ListPartnersRequest, context: aio.ServicerContext
    ) -> partners_pb2.ListPartnersResponse:
        return partners_pb2.ListPartnersResponse(
            partners=[_partner(p) for p in await self._c.partners.list()]
        )

    async def ScheduleMaintenance(
        self, request: partners_pb2.ScheduleMaintenanceRequest, context: aio.ServicerContext
    ) -> partners_pb2.MaintenanceWindow:
        site = validate.optional_id("site", request.site)
        reason = validate.reason(request.reason, required=True)
        window = await self._c.maintenance.schedule(
            site=site,
            starts_ms=_time("starts_ms", request.starts_ms, zero_ok=False),
            ends_ms=_time("ends_ms", request.ends_ms, zero_ok=False),
            reason=reason,
            actor=current_actor(),
        )
        return _window(window)

    async def CancelMaintenance(
        self, request: partners_pb2.CancelMaintenanceRequest, context: aio.ServicerContext
    ) -> partners_pb2.MaintenanceWindow:
        if (
            not (request.window_id.isascii() and request.window_id.isdigit())
            or len(request.window_id) > 18
        ):
            raise InvalidArgument("window_id: must be a window id from ListMaintenance")
        return _window(await self._c.maintenance.cancel(int(request.window_id)))

    async def ListMaintenance(
        self, request: partners_pb2.ListMaintenanceRequest, context: aio.ServicerContext
    ) -> partners_pb2.ListMaintenanceResponse:
        windows = await self._c.maintenance.list(_time("after_ms", request.after_ms))
        return partners_pb2.ListMaintenanceResponse(windows=[_window(w) for w in windows])

    async def ListIncidents(
        self, request: partners_pb2.ListIncidentsRequest, context: aio.ServicerContext
    ) -> partners_pb2.ListIncidentsResponse:
        rows = await self._c.incidents.list(
            _time("from_ms", request.from_ms), _time("to_ms", request.to_ms)
        )
        return partners_pb2.ListIncidentsResponse(
            incidents=[
                partners_pb2.Incident(
                    incident_id=str(i.id),
                    cause=i.cause,
                    site=i.site,
                    started_ms=i.started_ms,
                    ended_ms=i.ended_ms,
                )
                for i in rows
            ]
        )

    async def RevealRecipientPhone(
        self, request: partners_pb2.RevealRecipientPhoneRequest, context: aio.ServicerContext
    ) -> partners_pb2.RevealRecipientPhoneResponse:
        parcel_id = validate.required_id("parcel_id", request.parcel_id)
        reason = validate.reason(request.reason, required=True)
        phone = await self._c.personal_data.reveal_phone(
            parcel_id, actor=current_actor(), reason=reason
        )
        return partners_pb2.RevealRecipientPhoneResponse(phone=phone)

    async def ListPersonalDataReads(
        self, request: partners_pb2.ListPersonalDataReadsRequest, context: aio.ServicerContext
    ) -> partners_pb2.ListPersonalDataReadsResponse:
        parcel_id = validate.optional_id("parcel_id", request.parcel_id)
        reads = await self._c.personal_data.reads(
            parcel_id=parcel_id, after_id=request.after_id, page_size=request.page_size
        )
        return partners_pb2.ListPersonalDataReadsResponse(
            reads=[
                partners_pb2.PersonalDataRead(
                    id=r.id, ts_ms=r.ts_ms, actor=r.actor, parcel_id=r.parcel_id, purpose=r.purpose
                )
                for r in reads
            ]
        )

    async def SetSiteFiling(
        self, request: partners_pb2.SetSiteFilingRequest, context: aio.ServicerContext
    ) -> partners_pb2.SiteFiling:
        site = validate.required_id("site", request.site)
        filing = validate.reason(request.filing_number, required=True, field="filing_number")
        site_type = validate.optional_id("site_type", request.site_type)
        async with self._c.store.transaction() as tx:
            if not await devices_repo.site_exists(tx, site):
                raise NotFound(f"site {site!r} not found")
            await reporting_repo.set_filing(
                tx,
                site=site,
                filing_number=filing,
                site_type=site_type,
                public_service=request.public_service,
            )
        return partners_pb2.SiteFiling(
            site=site,
            filing_number=filing,
            site_type=site_type,
            public_service=request.public_service,
        )

    async def ExportReport(
        self, request: partners_pb2.ExportReportRequest, context: aio.ServicerContext
    ) -> partners_pb2.ExportReportResponse:
        report = await export.build(
            self._c.store, request.from_ms, request.to_ms, now_ms=self._c.clock.now_ms()
        )
        if request.format == partners_pb2.EXPORT_FORMAT_CSV:
            return partners_pb2.ExportReportResponse(
                content=export.to_csv(report), content_type="text/csv"
            )
        return partners_pb2.ExportReportResponse(
            content=export.to_json(report), content_type="application/json"
        )
