"""Bearer-token authentication with roles, for the one auth interceptor (``hub.api.interceptors``).

Tokens are configured as SHA-256 hex digests (``lockerhub hub-token`` makes a token and its
digest); the plaintext never lives in the settings. A token may expire. Roles nest: viewer <
operator < admin; admin alone may read the token table (AdminService.ListTokens).
"""

from __future__ import annotations

import contextvars
import enum
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass


class Role(enum.IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenEntry:
    """A configured token as the hub knows it: never its digest outside this module."""

    name: str
    role: Role
    expires_ms: int | None = None
    # The carrier (tenant) the token is scoped to; "" = the city operator, who sees every carrier.
    carrier: str = ""

    def expired(self, now_ms: int) -> bool:
        return self.expires_ms is not None and now_ms >= self.expires_ms


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's name (used as the audit actor), its role and its carrier
    ("" = the city operator)."""

    name: str
    role: Role
    carrier: str = ""

    @property
    def actor(self) -> str:
        return f"{self.role.name.lower()}:{self.name}"


# Auth disabled (no tokens configured): every caller is this principal.
ANONYMOUS = Principal("anonymous", Role.ADMIN)

_current: contextvars.ContextVar[Principal] = contextvars.ContextVar(
    "lockerhub_principal", default=ANONYMOUS
)


def current_actor() -> str:
    """The audit actor of the call being served ("operator" when auth is disabled)."""
    principal = _current.get()
    return "operator" if principal is ANONYMOUS else principal.actor


def current_carrier() -> str:
    """The carrier the call is scoped to; "" for the city operator (and with auth disabled)."""
    return _current.get().carrier


def set_principal(principal: Principal) -> contextvars.Token[Principal]:
    return _current.set(principal)


def reset_principal(token: contextvars.Token[Principal]) -> None:
    _current.reset(token)


# The least role each operator RPC needs; a method missing here needs ADMIN (deny by default).
_VIEW = ("GetParcel", "ListParcels", "WatchEvents", "ListSites", "ListCabinets", "GetCabinet")
_VIEW2 = ("ListAlarms", "ListChargingPiles", "ListCarriers", "ListCarrierQuotas")
_VIEW3 = ("GetCourier", "ListCouriers", "GetCourierRecord", "ListBadConduct")
_VIEW4 = ("ListMaintenance", "ListIncidents", "GetSortPlan", "GetScreening", "GetContainer")
_ADMIN = ("ListTokens", "RegisterCarrier", "SetCarrierQuota")
_OPERATE = (
    "AnnounceParcels",
    "CancelParcel",
    "WithdrawParcel",
    "ReissuePickupCode",
    "PlanRoutes",
    "OpenCompartment",
    "SetCompartmentEnabled",
    "AcknowledgeAlarm",
    "ClearAlarm",
    "RemoteStartCharging",
    "RemoteStopCharging",
    "ScheduleMaintenance",
    "CancelMaintenance",
    "SetSiteFiling",
    "ExportReport",
    "RegisterCourier",
    "SetCourierStatus",
    "SetCourierCode",
    "IssueCourierToken",
    "FileComplaint",
    "AddToBadConductList",
    "RemoveFromBadConductList",
    "SetSortPlan",
    "ReleaseParcel",
    "RecordContainer",
)
# ADMIN (by default): CreatePartner, RevokePartner, ListPartners, RevealRecipientPhone,
# ListPersonalDataReads - partner secrets and full phone numbers.
REQUIRED_ROLE: dict[str, Role] = {
    **{m: Role.VIEWER for m in (*_VIEW, *_VIEW2, *_VIEW3, *_VIEW4)},
    **{m: Role.OPERATOR for m in _OPERATE},
    **{m: Role.ADMIN for m in _ADMIN},
}


def required_role(method: str) -> Role:
    """``/lockerhub.v1.FleetService/ListAlarms`` -> the role it needs."""
    return REQUIRED_ROLE.get(method.rsplit("/", 1)[-1], Role.ADMIN)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenBook:
    """The configured tokens; ``lookup`` compares digests in constant time."""

    def __init__(self, entries: Iterable[tuple[TokenEntry, str]]) -> None:
        self._entries = [(entry, digest.lower()) for entry, digest in entries]

    @property
    def enabled(self) -> bool:
        return bool(self._entries)

    @property
    def entries(self) -> list[TokenEntry]:
        return [entry for entry, _ in self._entries]

    def lookup(self, token: str) -> TokenEntry | None:
        """The entry of ``token`` (expired or not: the caller tells the two apart)."""
        digest = token_digest(token)
        found: TokenEntry | None = None
        for entry, expected in self._entries:
            if hmac.compare_digest(digest, expected):
                found = entry
        return found
