"""Reads of full phone numbers, each audited (who, when, which parcel, why) in the same
transaction as the read; the audit is listed by ComplianceService.ListPersonalDataReads."""

from __future__ import annotations

from hub.errors import InvalidArgument, NotFound
from hub.store import Store
from hub.store.repo import parcels as parcels_repo
from hub.store.repo import privacy as repo
from hub.store.repo.privacy import DataRead
from lockerhub.clock import Clock

MAX_PAGE = 1000
DEFAULT_PAGE = 100


class PersonalData:
    """The operator-facing side: reveal a number (audited) and read the audit."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def reveal_phone(self, parcel_id: str, *, actor: str, reason: str) -> str:
        """The recipient's full number, audited.

        Raises:
            NotFound: unknown parcel, or its number was purged (retention) - nothing is audited.
        """
        async with self._store.transaction() as tx:
            phone = await parcels_repo.recipient_phone(tx, parcel_id)
            if phone is None:
                raise NotFound(f"parcel {parcel_id!r} has no recipient number (unknown or purged)")
            await repo.record_read(
                tx, ts_ms=self._clock.now_ms(), actor=actor, parcel_id=parcel_id, purpose=reason
            )
        return phone

    async def reads(self, *, parcel_id: str, after_id: int, page_size: int) -> list[DataRead]:
        """Raises InvalidArgument for a page size over the limit or a negative position."""
        if page_size > MAX_PAGE:
            raise InvalidArgument(f"page_size must be <= {MAX_PAGE}")
        if after_id < 0:
            raise InvalidArgument("after_id must be >= 0")
        async with self._store.read() as tx:
            return await repo.reads(
                tx, parcel_id=parcel_id, after_id=after_id, limit=page_size or DEFAULT_PAGE
            )
