"""Conduct records built from what devices report (inside the transaction that applies it).

Attribution: an incident counts against the courier the parcel history names for the parcel's
deposit (``parcel_transitions.courier``); nothing is recorded when no courier is named.
"""

from __future__ import annotations

from hub.store import Tx
from hub.store.repo import couriers as repo
from hub.store.repo import parcels as parcels_repo

# A forced door within this long after a deposit counts against the depositing courier.
FORCED_WINDOW_MS = 10 * 60_000


async def on_deposit(tx: Tx, parcel_id: str, courier: str, now_ms: int, actor: str) -> None:
    """A deposit after the parcel's reservation had run out is a late deposit."""
    if not courier:
        return
    expires = await parcels_repo.reservation_expires_ms(tx, parcel_id)
    if expires and now_ms > expires:
        await repo.add_conduct(
            tx, courier, "late_deposit", parcel_id=parcel_id,
            detail=f"{(now_ms - expires) // 1000} s after the reservation expired",
            actor=actor, ts_ms=now_ms,
        )  # fmt: skip


async def on_wrong_compartment(
    tx: Tx, parcel_id: str, courier: str, device: str, compartment: str, now_ms: int
) -> None:
    """A refused deposit into another compartment than the one reserved at this cabinet."""
    if not courier:
        return
    reserved = await parcels_repo.reserved_at(tx, parcel_id)
    if reserved is not None and reserved[0] == device and reserved[1] != compartment:
        await repo.add_conduct(
            tx, courier, "wrong_compartment", parcel_id=parcel_id,
            detail=f"deposited in {compartment}, reserved {reserved[1]}",
            actor=f"device:{device}", ts_ms=now_ms,
        )  # fmt: skip


async def on_forced_open(tx: Tx, location: str, now_ms: int, actor: str) -> None:
    """A door forced open at ``location`` (site/cabinet/compartment) shortly after a courier's
    deposit there counts against that courier."""
    found = await repo.last_deposit_at(tx, location, now_ms - FORCED_WINDOW_MS)
    if found is not None:
        parcel_id, courier = found
        await repo.add_conduct(
            tx, courier, "forced_open", parcel_id=parcel_id,
            detail=f"door forced at {location}", actor=actor, ts_ms=now_ms,
        )  # fmt: skip


async def on_expired(tx: Tx, parcel_id: str, now_ms: int) -> None:
    """A parcel left past its pickup deadline without withdrawal counts against its depositor."""
    courier = await repo.depositor(tx, parcel_id)
    if courier:
        await repo.add_conduct(
            tx, courier, "left_past_deadline", parcel_id=parcel_id,
            detail="pickup deadline passed", actor="hub", ts_ms=now_ms,
        )  # fmt: skip
