"""Partner credentials: separate from operator tokens, stored as SHA-256 digests in the store.

A partner is created by an admin (ComplianceService.CreatePartner) with the carriers whose
parcels it may see; the secret (``lhp_`` + 43 url-safe characters, 256 random bits) is shown once
and only its digest is kept. A partner calls PartnerService with ``authorization: Partner
<secret>``; an unknown, revoked or expired secret is refused the same way an operator token is.
"""

from __future__ import annotations

import hashlib
import secrets

from hub.errors import Conflict, HubError, InvalidArgument, NotFound
from hub.store import Store
from hub.store.repo import carriers as carriers_repo
from hub.store.repo import partners as repo
from hub.store.repo.partners import PartnerRow
from lockerhub.clock import Clock

SECRET_PREFIX = "lhp_"  # noqa: S105 - a prefix, not a secret
# Longer input is refused before hashing (a credential is 47 characters).
MAX_SECRET_LEN = 128
MAX_CARRIERS = 100


class PartnerRefused(HubError):
    """The credential is missing, unknown, revoked or expired (UNAUTHENTICATED)."""


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class PartnerBook:
    """Creates, revokes, lists and authenticates partners."""

    RECHECK_MS = 10_000

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._checked: dict[str, int] = {}

    def stale(self, partner: PartnerRow) -> bool:
        """True when ``partner`` was last checked more than RECHECK_MS ago."""
        return self._clock.now_ms() - self._checked.get(partner.id, 0) >= self.RECHECK_MS

    async def recheck(self, partner: PartnerRow) -> PartnerRow:
        """The partner as stored now. Raises PartnerRefused when revoked, expired or gone."""
        async with self._store.read() as tx:
            row = await repo.partner(tx, partner.id)
        return self._valid(row)

    def _valid(self, row: PartnerRow | None) -> PartnerRow:
        if row is None or row.revoked:
            raise PartnerRefused("unknown or revoked partner credential")
        now = self._clock.now_ms()
        if row.expires_ms and now >= row.expires_ms:
            raise PartnerRefused(f"partner credential of {row.id!r} expired")
        if len(self._checked) > 10_000:  # bounded: forget everything, costs one read each
            self._checked.clear()
        self._checked[row.id] = now
        return row

    async def create(
        self, partner_id: str, name: str, carriers: list[str], expires_ms: int
    ) -> tuple[PartnerRow, str]:
        """The new partner and its secret (the only time it exists outside the caller).

        Raises:
            InvalidArgument: no carrier, too many, one not in the carrier registry (named), or
                an expiry in the past.
            Conflict: the id is taken.
        """
        scope = tuple(sorted(set(carriers)))
        if not scope or len(scope) > MAX_CARRIERS:
            raise InvalidArgument(f"carrier_ids: 1-{MAX_CARRIERS} carriers are required")
        now = self._clock.now_ms()
        if expires_ms and expires_ms <= now:
            raise InvalidArgument("expires_ms: must be in the future (0 = never)")
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        async with self._store.transaction() as tx:
            unknown = await carriers_repo.unknown_carriers(tx, scope)
            if unknown:
                raise InvalidArgument(f"carrier_ids: not registered carriers: {unknown[:10]}")
            if not await repo.insert_partner(
                tx,
                partner_id=partner_id,
                name=name,
                digest=secret_digest(secret),
                carriers=scope,
                expires_ms=expires_ms,
                now_ms=now,
            ):
                raise Conflict(f"partner {partner_id!r} exists")
            row = await repo.partner(tx, partner_id)
        assert row is not None
        return row, secret

    async def revoke(self, partner_id: str) -> PartnerRow:
        """Raises NotFound."""
        async with self._store.transaction() as tx:
            if not await repo.revoke(tx, partner_id):
                raise NotFound(f"partner {partner_id!r} not found")
            row = await repo.partner(tx, partner_id)
        assert row is not None
        return row

    async def list(self) -> list[PartnerRow]:
        async with self._store.read() as tx:
            return await repo.partners(tx)

    async def authenticate(self, header: str) -> PartnerRow:
        """The partner behind an ``authorization`` header value ("Partner <secret>").

        Raises:
            PartnerRefused: missing, malformed, unknown, revoked or expired.
        """
        scheme, _, secret = header.partition(" ")
        secret = secret.strip()
        if scheme != "Partner" or not secret:
            raise PartnerRefused("missing partner credential (metadata 'authorization: Partner …')")
        if len(secret) > MAX_SECRET_LEN or not secret.startswith(SECRET_PREFIX):
            raise PartnerRefused("unknown or revoked partner credential")
        async with self._store.read() as tx:
            row = await repo.partner_by_digest(tx, secret_digest(secret))
        return self._valid(row)
