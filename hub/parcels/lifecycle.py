"""The parcel state machine: which transitions are allowed, recorded with who, when and where."""

from __future__ import annotations

from types import MappingProxyType

from hub.errors import IllegalTransition
from hub.models import ParcelRecord, Transition
from hub.models import ParcelState as S
from hub.store import Tx
from hub.store.repo import parcels as parcels_repo

# announced -> sorted -> loaded -> reserved -> deposited -> picked_up; deposited -> expired ->
# withdrawn -> returned; cancelled from anything not yet deposited. The hub reserves a compartment
# when a parcel is announced, so sorting and loading may follow the reservation (the compartment
# stays held) and a courier may deposit a sorted or loaded parcel. A reservation whose hold ran
# out returns the parcel to announced (see docs/hub.md).
ALLOWED: MappingProxyType[S, frozenset[S]] = MappingProxyType(
    {
        S.ANNOUNCED: frozenset({S.SORTED, S.LOADED, S.RESERVED, S.CANCELLED}),
        S.SORTED: frozenset({S.LOADED, S.RESERVED, S.DEPOSITED, S.CANCELLED}),
        S.LOADED: frozenset({S.RESERVED, S.DEPOSITED, S.CANCELLED}),
        S.RESERVED: frozenset({S.SORTED, S.LOADED, S.DEPOSITED, S.CANCELLED, S.ANNOUNCED}),
        S.DEPOSITED: frozenset({S.PICKED_UP, S.EXPIRED}),
        S.EXPIRED: frozenset({S.WITHDRAWN, S.PICKED_UP}),
        S.WITHDRAWN: frozenset({S.RETURNED}),
        S.PICKED_UP: frozenset(),
        S.RETURNED: frozenset(),
        S.CANCELLED: frozenset(),
    }
)

# States in which a parcel may hold a compartment reservation (not yet deposited).
BEFORE_DEPOSIT = frozenset({S.ANNOUNCED, S.SORTED, S.LOADED, S.RESERVED})

TERMINAL = frozenset(s for s, nxt in ALLOWED.items() if not nxt)


def reannounceable(parcel: ParcelRecord) -> bool:
    """True for a known parcel that may be announced again: not yet deposited and without a
    compartment (its reservation hold ran out), so a new announcement allocates a new one."""
    return parcel.state in BEFORE_DEPOSIT and not parcel.cabinet_id


def check_transition(parcel_id: str, current: S, new: S) -> None:
    """Raise IllegalTransition unless ``current -> new`` is allowed."""
    if new not in ALLOWED[current]:
        allowed = ", ".join(sorted(ALLOWED[current])) or "none (final state)"
        raise IllegalTransition(
            f"parcel {parcel_id} cannot go from {current} to {new} (allowed: {allowed})"
        )


async def record_transition(
    tx: Tx,
    parcel_id: str,
    current: S,
    new: S,
    *,
    ts_ms: int,
    actor: str,
    location: str,
    pickup_deadline_ms: int | None = None,
    detail: str = "",
    courier: str = "",
) -> None:
    """Check and store one transition (state + history row) inside the caller's transaction.

    Raises:
        IllegalTransition: ``current -> new`` is not allowed.
    """
    check_transition(parcel_id, current, new)
    await parcels_repo.set_state(tx, parcel_id, new, ts_ms, pickup_deadline_ms=pickup_deadline_ms)
    await parcels_repo.add_transition(
        tx, parcel_id, Transition(new, ts_ms, actor, location, courier), detail=detail
    )
