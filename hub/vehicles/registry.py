"""Register, update, retire and list vehicles: the rules across records (unique plates, known
depots and zones) on top of each record's own (``hub.vehicles.model.check``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from hub.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from hub.store import Store, Tx
from hub.store.repo import devices as devices_repo
from hub.store.repo import vehicles as repo
from hub.vehicles.model import MAX_REASON, Vehicle, VehicleClass
from lockerhub.clock import Clock


class VehicleRegistry:
    """The hub's vehicles and e-bikes; ``zones`` are the access zones the settings define."""

    def __init__(self, store: Store, clock: Clock, zones: Iterable[str]) -> None:
        self._store = store
        self._clock = clock
        self._zones = frozenset(zones)

    async def _check_refs(self, tx: Tx, v: Vehicle) -> None:
        unknown = sorted(set(v.permit_zones) - self._zones)
        if unknown:
            raise InvalidArgument(f"vehicle.permit_zones: unknown zones {unknown}")
        if not await devices_repo.site_exists(tx, v.depot_site):
            raise InvalidArgument(f"vehicle.depot_site: {v.depot_site!r} is not a site")
        owner = await repo.plate_owner(tx, v.plate)
        if owner is not None and owner != v.vehicle_id:
            raise Conflict(f"vehicle.plate: already registered to {owner}")

    async def register(self, v: Vehicle) -> Vehicle:
        """Raises: InvalidArgument, Conflict (the id or plate is taken)."""
        now = self._clock.now_ms()
        v = dataclasses.replace(v, registered_ms=now, updated_ms=now, retired=False)
        async with self._store.transaction() as tx:
            if await repo.get(tx, v.vehicle_id) is not None:
                raise Conflict(f"vehicle {v.vehicle_id} is already registered")
            await self._check_refs(tx, v)
            await repo.insert(tx, v)
        return v

    async def update(self, v: Vehicle) -> Vehicle:
        """Replace a vehicle's record. Raises: NotFound, FailedPrecondition (retired)."""
        async with self._store.transaction() as tx:
            old = await repo.get(tx, v.vehicle_id)
            if old is None:
                raise NotFound(f"vehicle {v.vehicle_id} is not registered")
            if old.retired:
                raise FailedPrecondition(f"vehicle {v.vehicle_id} is retired")
            v = dataclasses.replace(
                v, registered_ms=old.registered_ms, updated_ms=self._clock.now_ms()
            )
            await self._check_refs(tx, v)
            await repo.update(tx, v)
        return v

    async def retire(self, vehicle_id: str, reason: str) -> Vehicle:
        """Idempotent for a retired vehicle. Raises: NotFound, InvalidArgument (no reason)."""
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON:
            raise InvalidArgument(f"reason: 1-{MAX_REASON} characters are required")
        async with self._store.transaction() as tx:
            old = await repo.get(tx, vehicle_id)
            if old is None:
                raise NotFound(f"vehicle {vehicle_id} is not registered")
            if old.retired:
                return old
            v = dataclasses.replace(
                old, retired=True, retired_reason=reason, updated_ms=self._clock.now_ms()
            )
            await repo.update(tx, v)
        return v

    async def get(self, vehicle_id: str) -> Vehicle:
        async with self._store.read() as tx:
            v = await repo.get(tx, vehicle_id)
        if v is None:
            raise NotFound(f"vehicle {vehicle_id} is not registered")
        return v

    async def list(
        self,
        *,
        vehicle_class: VehicleClass | None = None,
        depot: str = "",
        include_retired: bool = False,
    ) -> list[Vehicle]:
        async with self._store.read() as tx:
            return await repo.list_vehicles(
                tx, vehicle_class=vehicle_class, depot=depot, include_retired=include_retired
            )
