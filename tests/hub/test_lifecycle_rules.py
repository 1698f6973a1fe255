"""Issue 18: every rule of the parcel state machine (hub.parcels.lifecycle), pinned pair by pair.

The table below is written out by hand from docs/hub.md, not derived from ``ALLOWED``: a removed or
added transition fails one parametrized case that names the pair. Recording runs on a real SQLite
file under ``tmp_path`` (no broker, no hub).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.errors import IllegalTransition
from hub.models import Dims, ParcelRecord, Transition, Zone
from hub.models import ParcelState as S
from hub.parcels.lifecycle import (
    ALLOWED,
    BEFORE_DEPOSIT,
    TERMINAL,
    check_transition,
    reannounceable,
    record_transition,
)
from hub.store import Store, Tx
from hub.store.repo import parcels as parcels_repo

EXPECTED: dict[S, set[S]] = {
    S.ANNOUNCED: {S.SORTED, S.LOADED, S.RESERVED, S.CANCELLED},
    S.SORTED: {S.LOADED, S.RESERVED, S.DEPOSITED, S.CANCELLED},
    S.LOADED: {S.RESERVED, S.DEPOSITED, S.CANCELLED},
    S.RESERVED: {S.SORTED, S.LOADED, S.DEPOSITED, S.CANCELLED, S.ANNOUNCED},
    S.DEPOSITED: {S.PICKED_UP, S.EXPIRED},
    S.EXPIRED: {S.WITHDRAWN, S.PICKED_UP},
    S.WITHDRAWN: {S.RETURNED},
    S.PICKED_UP: set(),
    S.RETURNED: set(),
    S.CANCELLED: set(),
}
PAIRS = list(itertools.product(S, S))
LEGAL = [(a, b) for a, b in PAIRS if b in EXPECTED[a]]
ILLEGAL = [(a, b) for a, b in PAIRS if b not in EXPECTED[a]]
BEFORE_DEPOSIT_STATES = {S.ANNOUNCED, S.SORTED, S.LOADED, S.RESERVED}


def _allowed_text(state: S) -> str:
    return ", ".join(sorted(str(s) for s in EXPECTED[state])) or "none (final state)"


def test_table_is_whole() -> None:
    assert len(LEGAL) == 21
    assert len(ILLEGAL) == 100 - 21
    assert {s: set(nxt) for s, nxt in ALLOWED.items()} == EXPECTED
    assert {S.PICKED_UP, S.RETURNED, S.CANCELLED} == TERMINAL
    assert BEFORE_DEPOSIT_STATES == BEFORE_DEPOSIT


@pytest.mark.parametrize(("current", "new"), LEGAL, ids=[f"{a}->{b}" for a, b in LEGAL])
def test_allowed_pair_passes(current: S, new: S) -> None:
    check_transition("p1", current, new)


@pytest.mark.parametrize(("current", "new"), ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_other_pair_raises_naming_both_states(current: S, new: S) -> None:
    with pytest.raises(IllegalTransition) as err:
        check_transition("p1", current, new)
    assert str(err.value) == (
        f"parcel p1 cannot go from {current} to {new} (allowed: {_allowed_text(current)})"
    )


def test_message_lists_the_allowed_states_in_order() -> None:
    with pytest.raises(IllegalTransition, match=r"\(allowed: picked_up, withdrawn\)$"):
        check_transition("p", S.EXPIRED, S.RETURNED)
    with pytest.raises(IllegalTransition, match=r"\(allowed: none \(final state\)\)$"):
        check_transition("p", S.CANCELLED, S.ANNOUNCED)


def _record(state: S, cabinet: str = "") -> ParcelRecord:
    return ParcelRecord(
        parcel_id="p",
        state=state,
        site="S1",
        cabinet_id=cabinet,
        compartment_id="c1" if cabinet else "",
        dims=Dims(100, 100, 100),
        weight_g=500,
        zone=Zone.AMBIENT,
        phone_masked="+49*****12",
        electronic_waybill=False,
        reusable_container=False,
        pickup_deadline_ms=0,
    )


@pytest.mark.parametrize("state", list(S))
def test_reannounce_set(state: S) -> None:
    """Only a parcel not yet deposited and without a compartment may be announced again."""
    assert reannounceable(_record(state)) is (state in BEFORE_DEPOSIT_STATES)
    assert reannounceable(_record(state, cabinet="CAB1")) is False


@pytest.fixture
async def store(store_target: Path | str) -> AsyncIterator[Store]:
    """The same rules on both back ends (SQLite file, PostgreSQL database)."""
    async with Store(store_target) as s:
        yield s


async def _insert(tx: Tx, parcel_id: str, state: S, deadline_ms: int = 0) -> None:
    parcel = dataclasses.replace(
        _record(state), parcel_id=parcel_id, pickup_deadline_ms=deadline_ms
    )
    await parcels_repo.insert_parcel(
        tx, parcel, phone="+4915112345612", reservation_expires_ms=0, now_ms=1
    )


async def test_every_allowed_transition_is_recorded(store: Store) -> None:
    """State, history (who, when, where) and detail, for each of the 21 allowed pairs."""
    async with store.transaction() as tx:
        for n, (current, new) in enumerate(LEGAL):
            await _insert(tx, f"p{n}", current, deadline_ms=7)
            await record_transition(
                tx,
                f"p{n}",
                current,
                new,
                ts_ms=1000 + n,
                actor=f"actor{n}",
                location=f"loc{n}",
                detail=f"detail{n}",
            )
    async with store.read() as tx:
        for n, (_, new) in enumerate(LEGAL):
            got = await parcels_repo.get_parcel(tx, f"p{n}")
            assert got is not None
            assert got.state is new
            assert got.pickup_deadline_ms == 7  # None keeps the stored deadline
            assert got.history == (Transition(new, 1000 + n, f"actor{n}", f"loc{n}"),)
            row = await tx.fetchone(
                "SELECT detail FROM parcel_transitions WHERE parcel_id = ?", (f"p{n}",)
            )
            assert row is not None
            assert row["detail"] == f"detail{n}"


async def test_deadline_is_stored_with_the_transition(store: Store) -> None:
    async with store.transaction() as tx:
        await _insert(tx, "p", S.RESERVED)
        await record_transition(
            tx,
            "p",
            S.RESERVED,
            S.DEPOSITED,
            ts_ms=5,
            actor="CAB1",
            location="S1/CAB1/c1",
            pickup_deadline_ms=99,
        )
        got = await parcels_repo.get_parcel(tx, "p")
    assert got is not None
    assert (got.state, got.pickup_deadline_ms) == (S.DEPOSITED, 99)


@pytest.mark.parametrize(
    ("current", "new"),
    [(S.LOADED, S.ANNOUNCED), (S.RESERVED, S.PICKED_UP), (S.PICKED_UP, S.DEPOSITED)],
)
async def test_illegal_transition_records_nothing(store: Store, current: S, new: S) -> None:
    async with store.transaction() as tx:
        await _insert(tx, "p", current)
        with pytest.raises(IllegalTransition, match=f"cannot go from {current} to {new}"):
            await record_transition(tx, "p", current, new, ts_ms=5, actor="a", location="l")
        got = await parcels_repo.get_parcel(tx, "p")
    assert got is not None
    assert got.state is current
    assert got.history == ()
