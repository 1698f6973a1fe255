"""CarrierService servicer: the carrier registry and compartment quotas (city operator only;
carrier tokens are refused by the tenancy guard, ``hub.api.tenancy``)."""

from __future__ import annotations

from grpc import aio

from hub.api import validate
from hub.api.auth import current_actor
from hub.couriers.carriers import CarrierRegistry
from hub.errors import InvalidArgument
from hub.store.repo.carriers import CarrierRow, QuotaRow
from lockerhub.v1 import carriers_pb2, carriers_pb2_grpc

MAX_NAME = 200
MAX_COMPARTMENTS = 100_000


def carrier_message(c: CarrierRow) -> carriers_pb2.Carrier:
    return carriers_pb2.Carrier(carrier_id=c.carrier_id, name=c.name, created_ms=c.created_ms)


def quota_message(q: QuotaRow) -> carriers_pb2.CarrierQuota:
    return carriers_pb2.CarrierQuota(
        carrier_id=q.carrier_id,
        cabinet_id=q.cabinet_id,
        max_compartments=q.max_compartments,
        reserved_compartments=list(q.reserved),
    )


def name(value: str) -> str:
    text = value.strip()
    if not text or len(value) > MAX_NAME or not text.isprintable():
        raise InvalidArgument(f"name: 1-{MAX_NAME} printable characters")
    return text


class CarrierServicer(carriers_pb2_grpc.CarrierServiceServicer):
    def __init__(self, carriers: CarrierRegistry) -> None:
        self._carriers = carriers

    async def RegisterCarrier(
        self, request: carriers_pb2.RegisterCarrierRequest, context: aio.ServicerContext
    ) -> carriers_pb2.Carrier:
        carrier_id = validate.required_id("carrier_id", request.carrier_id)
        row = await self._carriers.register(carrier_id, name(request.name), actor=current_actor())
        return carrier_message(row)

    async def ListCarriers(
        self, request: carriers_pb2.ListCarriersRequest, context: aio.ServicerContext
    ) -> carriers_pb2.ListCarriersResponse:
        rows = await self._carriers.carriers()
        return carriers_pb2.ListCarriersResponse(carriers=[carrier_message(c) for c in rows])

    async def SetCarrierQuota(
        self, request: carriers_pb2.SetCarrierQuotaRequest, context: aio.ServicerContext
    ) -> carriers_pb2.CarrierQuota:
        q = request.quota
        carrier_id = validate.required_id("quota.carrier_id", q.carrier_id)
        cabinet_id = validate.required_id("quota.cabinet_id", q.cabinet_id)
        if q.max_compartments > MAX_COMPARTMENTS:
            raise InvalidArgument(f"quota.max_compartments: at most {MAX_COMPARTMENTS}")
        reserved = [
            validate.required_id("quota.reserved_compartments", c)
            for c in q.reserved_compartments[:1001]
        ]
        row = await self._carriers.set_quota(carrier_id, cabinet_id, q.max_compartments, reserved)
        return quota_message(row)

    async def ListCarrierQuotas(
        self, request: carriers_pb2.ListCarrierQuotasRequest, context: aio.ServicerContext
    ) -> carriers_pb2.ListCarrierQuotasResponse:
        carrier_id = validate.optional_id("carrier_id", request.carrier_id)
        cabinet_id = validate.optional_id("cabinet_id", request.cabinet_id)
        rows = await self._carriers.quotas(carrier_id=carrier_id, cabinet_id=cabinet_id)
        return carriers_pb2.ListCarrierQuotasResponse(quotas=[quota_message(q) for q in rows])
