"""CourierService servicer: couriers, their credentials, conduct records and the bad-conduct
list. Tenancy (a carrier's token reaches only its own couriers) is decided by ``hub.api.tenancy``
before a handler runs; ListCouriers filters by the caller's carrier here."""

from __future__ import annotations

from grpc import aio

from hub.api import validate
from hub.api.auth import current_actor, current_carrier
from hub.api.carriers import name
from hub.couriers.registry import STATUSES, CourierRecord, CourierRegistry
from hub.errors import InvalidArgument
from hub.store.repo.couriers import CourierRow
from lockerhub.v1 import carriers_pb2, carriers_pb2_grpc

_STATUS = {
    "active": carriers_pb2.COURIER_STATUS_ACTIVE,
    "suspended": carriers_pb2.COURIER_STATUS_SUSPENDED,
    "barred": carriers_pb2.COURIER_STATUS_BARRED,
}
_STATUS_NAME = {v: k for k, v in _STATUS.items()}
MAX_PHONE = 32
MAX_CODE = 32


def courier_message(c: CourierRow) -> carriers_pb2.Courier:
    return carriers_pb2.Courier(
        courier_id=c.courier_id,
        carrier_id=c.carrier_id,
        name=c.name,
        phone_masked=c.phone_masked,
        status=_STATUS.get(c.status, carriers_pb2.COURIER_STATUS_UNSPECIFIED),
        has_code=bool(c.code_hash),
        on_bad_conduct_list=bool(c.blocked_reason),
    )


def record_message(r: CourierRecord) -> carriers_pb2.CourierRecord:
    return carriers_pb2.CourierRecord(
        courier=courier_message(r.courier),
        entries=[
            carriers_pb2.ConductEntry(
                kind=e.kind, parcel_id=e.parcel_id, detail=e.detail, actor=e.actor, ts_ms=e.ts_ms
            )
            for e in r.entries
        ],
        score=r.score,
        deposits=r.deposits,
        withdrawals=r.withdrawals,
        bad_conduct_reason=r.courier.blocked_reason,
    )


class CourierServicer(carriers_pb2_grpc.CourierServiceServicer):
    def __init__(self, couriers: CourierRegistry) -> None:
        self._couriers = couriers

    async def RegisterCourier(
        self, request: carriers_pb2.RegisterCourierRequest, context: aio.ServicerContext
    ) -> carriers_pb2.Courier:
        courier_id = validate.required_id("courier_id", request.courier_id)
        carrier_id = validate.required_id("carrier_id", request.carrier_id)
        if len(request.phone) > MAX_PHONE:
            raise InvalidArgument(f"phone: at most {MAX_PHONE} characters")
        row = await self._couriers.register(
            courier_id=courier_id,
            carrier_id=carrier_id,
            name=name(request.name),
            phone=request.phone,
        )
        return courier_message(row)

    async def GetCourier(
        self, request: carriers_pb2.GetCourierRequest, context: aio.ServicerContext
    ) -> carriers_pb2.Courier:
        courier_id = validate.required_id("courier_id", request.courier_id)
        return courier_message(await self._couriers.get(courier_id))

    async def ListCouriers(
        self, request: carriers_pb2.ListCouriersRequest, context: aio.ServicerContext
    ) -> carriers_pb2.ListCouriersResponse:
        carrier = current_carrier() or validate.optional_id("carrier_id", request.carrier_id)
        rows = await self._couriers.couriers(carrier)
        return carriers_pb2.ListCouriersResponse(couriers=[courier_message(c) for c in rows])

    async def SetCourierStatus(
        self, request: carriers_pb2.SetCourierStatusRequest, context: aio.ServicerContext
    ) -> carriers_pb2.Courier:
        courier_id = validate.required_id("courier_id", request.courier_id)
        status = _STATUS_NAME.get(request.status)
        if status is None:
            raise InvalidArgument(f"status: one of {STATUSES}")
        reason = validate.reason(request.reason, required=True)
        row = await self._couriers.set_status(
            courier_id, status, reason=reason, actor=current_actor()
        )
        return courier_message(row)

    async def SetCourierCode(
        self, request: carriers_pb2.SetCourierCodeRequest, context: aio.ServicerContext
    ) -> carriers_pb2.Courier:
        courier_id = validate.required_id("courier_id", request.courier_id)
        if len(request.code) > MAX_CODE:
            raise InvalidArgument("code: 6-12 digits")
        row = await self._couriers.set_code(courier_id, request.code, actor=current_actor())
        return courier_message(row)

    async def IssueCourierToken(
        self, request: carriers_pb2.IssueCourierTokenRequest, context: aio.ServicerContext
    ) -> carriers_pb2.IssueCourierTokenResponse:
        courier_id = validate.required_id("courier_id", request.courier_id)
        token, expires = await self._couriers.issue_token(courier_id, request.ttl_seconds)
        return carriers_pb2.IssueCourierTokenResponse(token=token, expires_ms=expires)

    async def FileComplaint(
        self, request: carriers_pb2.FileComplaintRequest, context: aio.ServicerContext
    ) -> carriers_pb2.CourierRecord:
        courier_id = validate.required_id("courier_id", request.courier_id)
        parcel_id = validate.optional_id("parcel_id", request.parcel_id)
        detail = validate.reason(request.detail, required=True, field="detail")
        record = await self._couriers.file_complaint(
            courier_id, parcel_id, detail, actor=current_actor()
        )
        return record_message(record)

    async def GetCourierRecord(
        self, request: carriers_pb2.GetCourierRequest, context: aio.ServicerContext
    ) -> carriers_pb2.CourierRecord:
        courier_id = validate.required_id("courier_id", request.courier_id)
        return record_message(await self._couriers.record(courier_id))

    async def AddToBadConductList(
        self, request: carriers_pb2.BadConductRequest, context: aio.ServicerContext
    ) -> carriers_pb2.CourierRecord:
        courier_id = validate.required_id("courier_id", request.courier_id)
        reason = validate.reason(request.reason, required=True)
        record = await self._couriers.block(courier_id, reason, actor=current_actor())
        return record_message(record)

    async def RemoveFromBadConductList(
        self, request: carriers_pb2.BadConductRequest, context: aio.ServicerContext
    ) -> carriers_pb2.CourierRecord:
        courier_id = validate.required_id("courier_id", request.courier_id)
        reason = validate.reason(request.reason, required=True)
        record = await self._couriers.unblock(courier_id, reason, actor=current_actor())
        return record_message(record)

    async def ListBadConduct(
        self, request: carriers_pb2.ListBadConductRequest, context: aio.ServicerContext
    ) -> carriers_pb2.ListBadConductResponse:
        rows = await self._couriers.blocklist()
        return carriers_pb2.ListBadConductResponse(
            entries=[
                carriers_pb2.BadConductEntry(
                    courier_id=b.courier_id,
                    carrier_id=b.carrier_id,
                    reason=b.reason,
                    actor=b.actor,
                    since_ms=b.since_ms,
                )
                for b in rows
            ]
        )
