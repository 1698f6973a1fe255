"""Tenancy: what a carrier-scoped token may reach, decided in one place for every RPC.

The auth interceptor calls :meth:`TenancyGuard.check` before any handler runs when the caller's
token is scoped to a carrier (a city operator's token, with no carrier, is not checked here). Each
operator RPC has one rule in :data:`RULES`; a method without a rule is refused to carrier tokens
(deny by default, so a new RPC is city-only until someone decides otherwise):

- ``own_parcel``: the request's ``parcel_id`` must be the carrier's; another carrier's parcel (or
  one that does not exist) answers NOT_FOUND with the same words, so ids of other carriers cannot
  be probed.
- ``own_courier``: the same for ``courier_id``.
- ``own_announcements``: every announced parcel is the carrier's; an empty ``carrier_id`` is filled
  in with it, another carrier's is PERMISSION_DENIED (nothing is stored).
- ``own_courier_registration``: the same for RegisterCourier's ``carrier_id``.
- ``own_compartment``: a remote open only of a compartment holding or reserved for a parcel of the
  carrier.
- ``scoped``: lists and streams; the service filters by :func:`hub.api.auth.current_carrier`
  (ListParcels, WatchEvents, ListCouriers).
- ``shared``: the public fleet (sites, cabinets): the cabinets are shared by every carrier.

A token whose carrier is not (or no longer) in the registry is refused everything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from hub.store import Store, Tx
from hub.store.repo import carriers as repo
from hub.store.repo import couriers as courier_repo


class TenancyDenied(Exception):
    """The call is outside the caller's carrier: ``code`` and ``message`` go to the client."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Rule = Callable[[Tx, Any, str], Awaitable[None]]


async def _shared(tx: Tx, request: Any, carrier: str) -> None:
    return None


async def _own_parcel(tx: Tx, request: Any, carrier: str) -> None:
    parcel_id = str(request.parcel_id)
    if await repo.parcel_carrier(tx, parcel_id) != carrier:
        raise TenancyDenied(grpc.StatusCode.NOT_FOUND, f"parcel {parcel_id!r} not found")


async def _own_courier(tx: Tx, request: Any, carrier: str) -> None:
    courier_id = str(request.courier_id)
    if await courier_repo.courier_carrier(tx, courier_id) != carrier:
        raise TenancyDenied(grpc.StatusCode.NOT_FOUND, f"courier {courier_id!r} not found")


async def _own_announcements(tx: Tx, request: Any, carrier: str) -> None:
    for parcel in request.parcels:
        if parcel.carrier_id and parcel.carrier_id != carrier:
            raise TenancyDenied(
                grpc.StatusCode.PERMISSION_DENIED,
                f"parcel {str(parcel.parcel_id)[:64]!r}: a token of carrier {carrier!r} "
                "announces only that carrier's parcels",
            )
        parcel.carrier_id = carrier


async def _own_courier_registration(tx: Tx, request: Any, carrier: str) -> None:
    if request.carrier_id and request.carrier_id != carrier:
        raise TenancyDenied(
            grpc.StatusCode.PERMISSION_DENIED,
            f"a token of carrier {carrier!r} registers only that carrier's couriers",
        )
    request.carrier_id = carrier


async def _own_compartment(tx: Tx, request: Any, carrier: str) -> None:
    owner = await repo.compartment_carrier(tx, str(request.cabinet_id), str(request.compartment_id))
    if owner != carrier:
        raise TenancyDenied(
            grpc.StatusCode.PERMISSION_DENIED,
            f"a token of carrier {carrier!r} opens only compartments holding its own parcels",
        )


_PARCEL = ("GetParcel", "CancelParcel", "ReissuePickupCode", "WithdrawParcel")
_COURIER = ("GetCourier", "SetCourierStatus", "SetCourierCode", "IssueCourierToken")
_SCOPED = ("ListParcels", "WatchEvents", "ListCouriers")
RULES: dict[str, Rule] = {
    **{m: _own_parcel for m in _PARCEL},
    **{m: _own_courier for m in (*_COURIER, "GetCourierRecord")},
    **{m: _shared for m in (*_SCOPED, "ListSites", "ListCabinets", "GetCabinet")},
    "AnnounceParcels": _own_announcements,
    "RegisterCourier": _own_courier_registration,
    "OpenCompartment": _own_compartment,
}


class TenancyGuard:
    """Checks a carrier-scoped call against :data:`RULES` (one read transaction)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def check(self, method: str, request: Any, carrier: str) -> None:
        """Raises :class:`TenancyDenied` when the call reaches outside ``carrier``."""
        name = method.rsplit("/", 1)[-1]
        rule = RULES.get(name)
        if rule is None:
            raise TenancyDenied(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{name} is not available to a carrier's token (carrier {carrier!r})",
            )
        async with self._store.read() as tx:
            if not await repo.carrier_exists(tx, carrier):
                raise TenancyDenied(
                    grpc.StatusCode.PERMISSION_DENIED, f"carrier {carrier!r} is not registered"
                )
            await rule(tx, request, carrier)
