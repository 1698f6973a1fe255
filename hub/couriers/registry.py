"""The courier registry: couriers of each carrier, their keypad codes (salted hashes only), app
tokens, complaints, the bad-conduct list (audited). Every change that alters who a cabinet may
let in bumps every cabinet's desired state, so the list reaches cabinets while they are online
and is what they enforce while the hub is away."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.couriers import conduct
from hub.devices import desired
from hub.devices.desired import DesiredStates
from hub.errors import Conflict, InvalidArgument, NotFound
from hub.parcels.phones import mask_phone, normalize_phone
from hub.settings import CourierSettings
from hub.store import Store, Tx
from hub.store.repo import carriers as carriers_repo
from hub.store.repo import couriers as repo
from hub.store.repo import devices as devices_repo
from hub.store.repo.couriers import BlockRow, ConductRow, CourierRow
from lockerhub import courier_token
from lockerhub.clock import Clock
from lockerhub.codes import hash_code

STATUSES = ("active", "suspended", "barred")
_CODE = re.compile(r"[0-9]{6,12}")


@dataclass(frozen=True, slots=True)
class CourierRecord:
    courier: CourierRow
    entries: list[ConductRow]
    score: int
    deposits: int
    withdrawals: int


class CourierRegistry:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: CourierSettings,
        desired_states: DesiredStates,
        key: Ed25519PrivateKey,
    ) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self._desired = desired_states
        self._key = key

    async def _require(self, tx: Tx, courier_id: str) -> CourierRow:
        row = await repo.get_courier(tx, courier_id)
        if row is None:
            raise NotFound(f"courier {courier_id!r} not found")
        return row

    async def _cabinets_changed(self, tx: Tx, now: int) -> None:
        for device in await devices_repo.list_devices(tx):
            if device.kind == "cabinet":
                await desired.mark(tx, device.device_id, now)

    async def register(
        self, *, courier_id: str, carrier_id: str, name: str, phone: str
    ) -> CourierRow:
        """Raises NotFound (unknown carrier), Conflict (id exists), InvalidArgument (phone)."""
        normalized = normalize_phone(phone)
        if normalized is None:
            raise InvalidArgument("phone: 6-15 digits, optionally with a leading +")
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            if not await carriers_repo.carrier_exists(tx, carrier_id):
                raise NotFound(f"carrier {carrier_id!r} not found")
            if not await repo.insert_courier(
                tx,
                courier_id=courier_id,
                carrier_id=carrier_id,
                name=name,
                phone_masked=mask_phone(normalized),
                now_ms=now,
            ):
                raise Conflict(f"courier {courier_id!r} exists")
            await self._cabinets_changed(tx, now)
            row = await self._require(tx, courier_id)
        self._desired.wake()
        return row

    async def get(self, courier_id: str) -> CourierRow:
        async with self._store.read() as tx:
            return await self._require(tx, courier_id)

    async def couriers(self, carrier_id: str = "") -> list[CourierRow]:
        async with self._store.read() as tx:
            return await repo.list_couriers(tx, carrier_id)

    async def set_status(
        self, courier_id: str, status: str, *, reason: str, actor: str
    ) -> CourierRow:
        if status not in STATUSES:
            raise InvalidArgument(f"status: one of {STATUSES}")
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            await self._require(tx, courier_id)
            await repo.set_status(tx, courier_id, status, now)
            await repo.audit(tx, courier_id, f"status:{status}", reason, actor, now)
            await self._cabinets_changed(tx, now)
            row = await self._require(tx, courier_id)
        self._desired.wake()
        return row

    async def set_code(self, courier_id: str, code: str, *, actor: str) -> CourierRow:
        """Store only the salted hash of ``code`` (6-12 digits); cabinets get the hash."""
        if not _CODE.fullmatch(code):
            raise InvalidArgument("code: 6-12 digits")
        encoded = hash_code(code, iterations=self._settings.code_iterations)
        _, iterations, salt, digest = encoded.split("$")
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            await self._require(tx, courier_id)
            await repo.set_code(tx, courier_id, salt, digest, int(iterations), now)
            await repo.audit(tx, courier_id, "code", "", actor, now)
            await self._cabinets_changed(tx, now)
            row = await self._require(tx, courier_id)
        self._desired.wake()
        return row

    async def issue_token(self, courier_id: str, ttl_s: int) -> tuple[str, int]:
        """A signed app token for an active courier not on the bad-conduct list.

        Raises:
            InvalidArgument: ttl over the limit. FailedPrecondition: courier not allowed.
        """
        from hub.errors import FailedPrecondition

        ttl = ttl_s or self._settings.token_ttl_s
        if ttl > self._settings.max_token_ttl_s:
            raise InvalidArgument(f"ttl_seconds: at most {self._settings.max_token_ttl_s}")
        async with self._store.read() as tx:
            row = await self._require(tx, courier_id)
        if row.status != "active" or row.blocked_reason:
            raise FailedPrecondition(f"courier {courier_id!r} is not active")
        expires = self._clock.now_ms() + ttl * 1000
        return courier_token.sign(self._key, row.courier_id, row.carrier_id, expires), expires

    async def file_complaint(
        self, courier_id: str, parcel_id: str, detail: str, *, actor: str
    ) -> CourierRecord:
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            await self._require(tx, courier_id)
            await repo.add_conduct(
                tx, courier_id, "complaint", parcel_id=parcel_id, detail=detail, actor=actor,
                ts_ms=now,
            )  # fmt: skip
        return await self.record(courier_id)

    async def record(self, courier_id: str) -> CourierRecord:
        async with self._store.read() as tx:
            row = await self._require(tx, courier_id)
            entries = await repo.conduct_of(tx, courier_id)
            counts = await repo.conduct_counts(tx, courier_id)
            deposits, withdrawals = await repo.handled_counts(tx, courier_id)
        return CourierRecord(row, entries, conduct.score(counts), deposits, withdrawals)

    async def block(self, courier_id: str, reason: str, *, actor: str) -> CourierRecord:
        """Put a courier on the bad-conduct list: every cabinet refuses them from its next
        desired state on, online or not."""
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            await self._require(tx, courier_id)
            await repo.block(tx, courier_id, reason, actor, now)
            await repo.audit(tx, courier_id, "bad_conduct:add", reason, actor, now)
            await self._cabinets_changed(tx, now)
        self._desired.wake()
        return await self.record(courier_id)

    async def unblock(self, courier_id: str, reason: str, *, actor: str) -> CourierRecord:
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            await self._require(tx, courier_id)
            await repo.unblock(tx, courier_id)
            await repo.audit(tx, courier_id, "bad_conduct:remove", reason, actor, now)
            await self._cabinets_changed(tx, now)
        self._desired.wake()
        return await self.record(courier_id)

    async def blocklist(self) -> list[BlockRow]:
        async with self._store.read() as tx:
            return await repo.blocklist(tx)
