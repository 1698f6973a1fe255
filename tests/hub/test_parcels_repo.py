"""Issue 18: the rules of the parcels repository (hub.store.repo.parcels), on a real SQLite file
and on a real PostgreSQL database.

Each query's selection (which states, which deadlines, which device) is pinned with a row on each
side of its boundary; no broker and no hub, only ``hub.store.Store`` under ``tmp_path``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.models import Dims, ParcelRecord, Transition, Zone
from hub.models import ParcelState as S
from hub.store import Store, Tx
from hub.store.repo import parcels as repo

BASE = ParcelRecord(
    parcel_id="p",
    state=S.ANNOUNCED,
    site="S1",
    cabinet_id="",
    compartment_id="",
    dims=Dims(100, 200, 300),
    weight_g=1500,
    zone=Zone.CHILLED,
    phone_masked="+49*****12",
    electronic_waybill=True,
    reusable_container=False,
    pickup_deadline_ms=0,
)


@pytest.fixture
async def store(store_target: Path | str) -> AsyncIterator[Store]:
    """The same rules on both back ends (SQLite file, PostgreSQL database)."""
    async with Store(store_target) as s:
        yield s


async def add(tx: Tx, parcel_id: str, *, expires_ms: int = 0, **fields: object) -> ParcelRecord:
    parcel = dataclasses.replace(BASE, parcel_id=parcel_id, **fields)  # type: ignore[arg-type]
    await repo.insert_parcel(
        tx, parcel, phone=f"+49151{parcel_id}", reservation_expires_ms=expires_ms, now_ms=1
    )
    return parcel


async def test_insert_and_read_back(store: Store) -> None:
    async with store.transaction() as tx:
        bare = await add(tx, "a")
        held = await add(tx, "b", state=S.RESERVED, cabinet_id="CAB", compartment_id="c1")
        assert await repo.get_parcel(tx, "a") == bare
        assert await repo.get_parcel(tx, "b") == held
        assert await repo.get_parcel(tx, "zz") is None
        assert await repo.recipient_phone(tx, "a") == "+49151a"
        assert await repo.recipient_phone(tx, "zz") is None
        device = await tx.fetchone("SELECT device, compartment FROM parcels WHERE id = 'a'")
        assert device is not None
        assert (device["device"], device["compartment"]) == (None, None)  # NULL, not ''


async def test_history_and_journal(store: Store) -> None:
    async with store.transaction() as tx:
        await add(tx, "a")
        t1 = Transition(S.RESERVED, 10, "hub", "S1")
        t2 = Transition(S.DEPOSITED, 20, "CAB", "S1/CAB/c1")
        await repo.add_transition(tx, "a", t1)
        await repo.add_transition(tx, "a", t2, detail="door closed")
        got = await repo.get_parcel(tx, "a")
        assert got is not None
        assert got.history == (t1, t2)
        bare = await repo.get_parcel(tx, "a", history=False)
        assert bare is not None
        assert bare.history == ()
        journal = await tx.fetchall(
            "SELECT site, kind, ref, state, actor, location FROM live_events ORDER BY id"
        )
        assert [tuple(r) for r in journal] == [
            ("S1", "parcel", "a", "reserved", "hub", "S1"),
            ("S1", "parcel", "a", "deposited", "CAB", "S1/CAB/c1"),
        ]


async def test_set_state_keeps_the_deadline_unless_given(store: Store) -> None:
    async with store.transaction() as tx:
        await add(tx, "a", pickup_deadline_ms=50)
        await repo.set_state(tx, "a", S.SORTED, 5)
        got = await repo.get_parcel(tx, "a")
        assert got is not None
        assert (got.state, got.pickup_deadline_ms) == (S.SORTED, 50)
        await repo.set_state(tx, "a", S.DEPOSITED, 6, pickup_deadline_ms=70)
        got = await repo.get_parcel(tx, "a")
        assert got is not None
        assert (got.state, got.pickup_deadline_ms) == (S.DEPOSITED, 70)


async def test_existing_ids_across_chunks(store: Store) -> None:
    """More ids than one statement's chunk (500): every chunk is asked, none skipped."""
    ids = [f"p{i:04}" for i in range(1100)]
    async with store.transaction() as tx:
        for i in ids:
            await add(tx, i)
        assert await repo.existing_ids(tx, [*ids, "nope"]) == set(ids)
        assert await repo.existing_ids(tx, ["p0000", "p0500", "p1099", "x"]) == {
            "p0000",
            "p0500",
            "p1099",
        }
        assert await repo.existing_ids(tx, []) == set()


async def test_list_parcels_filters_and_pages(store: Store) -> None:
    async with store.transaction() as tx:
        for n in range(7):
            await add(tx, f"a{n}", state=S.DEPOSITED if n % 2 else S.ANNOUNCED)
        await add(tx, "other", site="S2")
    async with store.read() as tx:
        seen, cursor, pages = [], 0, 0
        while True:
            page, nxt = await repo.list_parcels(
                tx, site="S1", state=None, after_seq=cursor, limit=3
            )
            seen += [p.parcel_id for p in page]
            pages += 1
            if nxt is None:
                break
            assert nxt == await _seq(tx, page[-1].parcel_id)
            cursor = nxt
        assert seen == [f"a{n}" for n in range(7)]
        assert pages == 3
        # A page that ends exactly at the last row has no next cursor.
        page, nxt = await repo.list_parcels(tx, site="S1", state=None, after_seq=0, limit=7)
        assert (len(page), nxt) == (7, None)
        page, nxt = await repo.list_parcels(tx, site="S1", state=None, after_seq=0, limit=6)
        assert (len(page), nxt) == (6, await _seq(tx, "a5"))
        page, _ = await repo.list_parcels(tx, site="", state=None, after_seq=0, limit=100)
        assert [p.parcel_id for p in page] == [*(f"a{n}" for n in range(7)), "other"]
        page, _ = await repo.list_parcels(tx, site="S1", state=S.DEPOSITED, after_seq=0, limit=100)
        assert [p.parcel_id for p in page] == ["a1", "a3", "a5"]
        page, _ = await repo.list_parcels(tx, site="", state=S.ANNOUNCED, after_seq=0, limit=100)
        assert [p.parcel_id for p in page] == ["a0", "a2", "a4", "a6", "other"]


async def _seq(tx: Tx, parcel_id: str) -> int:
    row = await tx.fetchone("SELECT seq FROM parcels WHERE id = ?", (parcel_id,))
    assert row is not None
    return int(row["seq"])


async def test_code_hashes_upsert_delete_and_codes_of(store: Store) -> None:
    async with store.transaction() as tx:
        await add(tx, "in", state=S.DEPOSITED, cabinet_id="CAB", compartment_id="c1")
        await add(tx, "held", state=S.RESERVED, cabinet_id="CAB", compartment_id="c2")
        await add(tx, "other", state=S.DEPOSITED, cabinet_id="CAB2", compartment_id="c1")
        await add(tx, "nocode", state=S.DEPOSITED, cabinet_id="CAB", compartment_id="c3")
        for p in ("in", "held", "other"):
            await repo.store_code_hash(tx, p, "h1", issued_ms=1, deadline_ms=100)
        await repo.store_code_hash(tx, "in", "h2", issued_ms=2, deadline_ms=200)
        assert await repo.codes_of(tx, "CAB") == [("in", "c1", "h2", 200)]
        await repo.delete_code_hash(tx, "in")
        assert await repo.codes_of(tx, "CAB") == []
        assert await repo.codes_of(tx, "CAB2") == [("other", "c1", "h1", 100)]


async def test_reservations_set_clear_and_list(store: Store) -> None:
    async with store.transaction() as tx:
        for n, state in enumerate((S.ANNOUNCED, S.SORTED, S.LOADED, S.RESERVED, S.DEPOSITED)):
            await add(tx, f"r{n}", state=state)
            await repo.set_reservation(tx, f"r{n}", "CAB", f"c{n}", 100 + n, 5)
        await add(tx, "elsewhere")
        await repo.set_reservation(tx, "elsewhere", "CAB2", "c1", 150, 5)
        assert await repo.reservations_of(tx, "CAB") == [
            ("r0", "c0", 100),
            ("r1", "c1", 101),
            ("r2", "c2", 102),
            ("r3", "c3", 103),
        ]
        await repo.clear_reservation(tx, "r1", 6)
        got = await repo.get_parcel(tx, "r1")
        assert got is not None
        assert (got.cabinet_id, got.compartment_id) == ("", "")
        assert [r[0] for r in await repo.reservations_of(tx, "CAB")] == ["r0", "r2", "r3"]
        # A cleared reservation is no longer a hold that can run out.
        due = [p.parcel_id for p in await repo.due_holds(tx, 1000, 10)]
        assert due == ["r0", "r2", "r3", "elsewhere"]


async def test_due_holds_boundaries(store: Store) -> None:
    async with store.transaction() as tx:
        await add(tx, "due", state=S.RESERVED, cabinet_id="C", compartment_id="1", expires_ms=100)
        await add(tx, "later", state=S.SORTED, cabinet_id="C", compartment_id="2", expires_ms=101)
        await add(tx, "none", state=S.LOADED, cabinet_id="C", compartment_id="3", expires_ms=0)
        await add(tx, "nocab", state=S.ANNOUNCED, expires_ms=50)
        await add(tx, "in", state=S.DEPOSITED, cabinet_id="C", compartment_id="4", expires_ms=50)
        await add(tx, "early", state=S.ANNOUNCED, cabinet_id="C", compartment_id="5", expires_ms=99)
        assert [p.parcel_id for p in await repo.due_holds(tx, 100, 10)] == ["early", "due"]
        assert [p.parcel_id for p in await repo.due_holds(tx, 100, 1)] == ["early"]


async def test_due_reminders_and_expiries(store: Store) -> None:
    async with store.transaction() as tx:
        await add(tx, "d100", state=S.DEPOSITED, pickup_deadline_ms=100)
        await add(tx, "d90", state=S.DEPOSITED, pickup_deadline_ms=90)
        await add(tx, "d101", state=S.DEPOSITED, pickup_deadline_ms=101)
        await add(tx, "nodeadline", state=S.DEPOSITED, pickup_deadline_ms=0)
        await add(tx, "expired", state=S.EXPIRED, pickup_deadline_ms=50)
        await add(tx, "held", state=S.RESERVED, pickup_deadline_ms=50)
        assert [p.parcel_id for p in await repo.due_reminders(tx, 100, 10)] == ["d90", "d100"]
        assert [p.parcel_id for p in await repo.due_reminders(tx, 100, 1)] == ["d90"]
        await repo.mark_reminded(tx, "d90")
        assert [p.parcel_id for p in await repo.due_reminders(tx, 100, 10)] == ["d100"]
        # Expiry does not care whether a reminder went out.
        assert [p.parcel_id for p in await repo.due_expiries(tx, 100, 10)] == ["d90", "d100"]
        assert [p.parcel_id for p in await repo.due_expiries(tx, 100, 1)] == ["d90"]
        assert [p.parcel_id for p in await repo.due_expiries(tx, 89, 10)] == []
