"""The carrier registry (tenants) and their per-cabinet compartment quotas."""

from __future__ import annotations

from hub.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from hub.store import Store
from hub.store.repo import carriers as repo
from hub.store.repo import devices as devices_repo
from hub.store.repo.carriers import CarrierRow, QuotaRow
from lockerhub.clock import Clock

MAX_RESERVED = 500


class CarrierRegistry:
    """Carriers and quotas; quotas take effect at the next allocation."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def register(self, carrier_id: str, name: str, *, actor: str) -> CarrierRow:
        """Raises Conflict when the id exists."""
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            if not await repo.insert_carrier(tx, carrier_id, name, now, actor):
                raise Conflict(f"carrier {carrier_id!r} exists")
        return CarrierRow(carrier_id, name, now)

    async def carriers(self) -> list[CarrierRow]:
        async with self._store.read() as tx:
            return await repo.list_carriers(tx)

    async def set_quota(
        self, carrier_id: str, cabinet_id: str, max_compartments: int, reserved: list[str]
    ) -> QuotaRow:
        """Replace ``carrier_id``'s quota on ``cabinet_id``.

        Raises:
            NotFound: unknown carrier, cabinet or compartment.
            InvalidArgument: duplicate or too many reserved compartments.
            FailedPrecondition: a compartment is reserved for another carrier, or holds another
                carrier's parcel.
        """
        if len(reserved) > MAX_RESERVED or len(set(reserved)) != len(reserved):
            raise InvalidArgument(f"reserved_compartments: at most {MAX_RESERVED}, each named once")
        async with self._store.transaction() as tx:
            if not await repo.carrier_exists(tx, carrier_id):
                raise NotFound(f"carrier {carrier_id!r} not found")
            cabinet = await devices_repo.get_cabinet(tx, cabinet_id)
            if cabinet is None or cabinet.kind != "cabinet":
                raise NotFound(f"cabinet {cabinet_id!r} not found")
            known = {c.compartment_id for c in cabinet.compartments}
            for compartment in reserved:
                if compartment not in known:
                    raise NotFound(f"compartment {cabinet_id}/{compartment} not found")
                owner = await repo.reserved_owner(tx, cabinet_id, compartment)
                if owner is not None and owner != carrier_id:
                    raise FailedPrecondition(
                        f"compartment {cabinet_id}/{compartment} is reserved for another carrier"
                    )
                held = await repo.compartment_carrier(tx, cabinet_id, compartment)
                if held is not None and held != carrier_id:
                    raise FailedPrecondition(
                        f"compartment {cabinet_id}/{compartment} holds another carrier's parcel"
                    )
            await repo.set_quota(tx, carrier_id, cabinet_id, max_compartments, reserved)
        return QuotaRow(carrier_id, cabinet_id, max_compartments, tuple(sorted(reserved)))

    async def quotas(self, *, carrier_id: str = "", cabinet_id: str = "") -> list[QuotaRow]:
        async with self._store.read() as tx:
            return await repo.list_quotas(tx, carrier_id=carrier_id, cabinet_id=cabinet_id)
