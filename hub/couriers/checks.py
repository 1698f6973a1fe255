"""Checks on couriers other services share."""

from __future__ import annotations

from hub.errors import FailedPrecondition
from hub.store import Tx
from hub.store.repo import couriers as couriers_repo


async def require_active_courier(tx: Tx, courier_id: str, carrier_id: str) -> None:
    """A carrier's parcel is withdrawn only by an active courier of that carrier.

    Raises:
        FailedPrecondition: no courier named, or not an active courier of ``carrier_id``.
    """
    if not courier_id:
        raise FailedPrecondition("courier_id: required for a carrier's parcel")
    courier = await couriers_repo.get_courier(tx, courier_id)
    if (
        courier is None
        or courier.carrier_id != carrier_id
        or courier.status != "active"
        or courier.blocked_reason
    ):
        raise FailedPrecondition(
            f"courier {courier_id!r} is not an active courier of the parcel's carrier"
        )
