"""Bulk writes (``Tx.insert_many``, ``Tx.update_many``) on both back ends, on both paths (a
transaction on the event loop and one on the store's thread)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.errors import StoreError
from hub.store import Store, Tx

_ROWS = 2_500  # more than one chunk of anything a back end might split


async def _seed(tx: Tx) -> None:
    await tx.execute("INSERT INTO sites VALUES ('s1', 'S1', 0, 0)")
    await tx.execute(
        "INSERT INTO devices (id, site, kind, registered_ms) VALUES ('CAB', 's1', 'cabinet', 0)"
    )
    await tx.insert_many(
        "compartments",
        ("device", "id", "size", "width_mm", "height_mm", "depth_mm", "max_weight_g", "zone"),
        [("CAB", f"C{i:05d}", "M", 100, 200, 300, 2**40 + i, "ambient") for i in range(_ROWS)],
    )


async def _states(store: Store) -> dict[str, tuple[str, str | None]]:
    async with store.read() as tx:
        rows = await tx.fetchall("SELECT id, state, parcel_id FROM compartments")
    return {r["id"]: (r["state"], r["parcel_id"]) for r in rows}


@pytest.mark.parametrize("on_thread", [False, True])
async def test_update_many_is_one_conditional_update_per_row(
    store_target: Path | str, on_thread: bool
) -> None:
    async with Store(store_target) as store:
        async with store.transaction() as tx:
            await _seed(tx)
            await tx.execute("UPDATE compartments SET state = 'occupied' WHERE id = 'C00008'")

        async def work(tx: Tx) -> tuple[int, int]:
            first = await tx.update_many(
                "compartments",
                ("device", "id"),
                ("parcel_id",),
                [("CAB", f"C{i:05d}", f"P{i}") for i in range(0, _ROWS, 2)],
                also="state = 'reserved'",
                where="compartments.state = 'free'",
            )
            # A second batch in the same transaction sees none of the first one's rows.
            second = await tx.update_many(
                "compartments",
                ("device", "id"),
                ("parcel_id",),
                [("CAB", "C00001", "Q1"), ("CAB", "C00002", "Q2"), ("CAB", "nope", "Q3")],
                also="state = 'reserved'",
                where="compartments.state = 'free'",
            )
            assert await tx.update_many("compartments", ("id",), ("state",), []) == 0
            return first, second

        if on_thread:
            first, second = await store.transaction_on_thread(work)
        else:
            async with store.transaction() as tx:
                first, second = await work(tx)
        # C00008 was not free; C00002 was reserved by the first batch; "nope" does not exist.
        assert (first, second) == (_ROWS // 2 - 1, 1)
        states = await _states(store)
        assert states["C00000"] == ("reserved", "P0")
        assert states["C00001"] == ("reserved", "Q1")
        assert states["C00002"] == ("reserved", "P2")
        assert states["C00003"] == ("free", None)
        assert states["C00008"] == ("occupied", None)
        assert sum(s == "reserved" for s, _ in states.values()) == _ROWS // 2


@pytest.mark.parametrize("on_thread", [False, True])
async def test_update_many_rolls_back_with_its_transaction(
    store_target: Path | str, on_thread: bool
) -> None:
    async with Store(store_target) as store:
        async with store.transaction() as tx:
            await _seed(tx)

        async def work(tx: Tx) -> None:
            changed = await tx.update_many(
                "compartments", ("device", "id"), ("state",), [("CAB", "C00001", "reserved")]
            )
            assert changed == 1
            raise StoreError("undo")

        async def attempt() -> None:
            if on_thread:
                await store.transaction_on_thread(work)
            else:
                async with store.transaction() as tx:
                    await work(tx)

        with pytest.raises(StoreError, match="undo"):
            await attempt()
        assert (await _states(store))["C00001"] == ("free", None)
        # The temporary table left nothing behind for the next transaction on that connection.
        async with store.transaction() as tx:
            changed = await tx.update_many(
                "compartments", ("device", "id"), ("state",), [("CAB", "C00002", "disabled")]
            )
        assert changed == 1
        assert (await _states(store))["C00001"] == ("free", None)


async def test_insert_many_keeps_integers_and_booleans_exact(store_target: Path | str) -> None:
    async with Store(store_target) as store:
        async with store.transaction() as tx:
            await _seed(tx)

        async def work(tx: Tx) -> None:
            await tx.update_many(
                "compartments", ("device", "id"), ("door_open",), [("CAB", "C00003", True)]
            )

        await store.transaction_on_thread(work)
        async with store.read() as tx:
            rows = await tx.fetchall(
                "SELECT id, max_weight_g, door_open FROM compartments WHERE id IN (?, ?) "
                "ORDER BY id",
                ("C00003", "C02499"),
            )
        assert [tuple(r) for r in rows] == [
            ("C00003", 2**40 + 3, 1),
            ("C02499", 2**40 + 2499, 0),
        ]


@pytest.mark.parametrize("on_thread", [False, True])
async def test_insert_many_keeps_the_rows_order(store_target: Path | str, on_thread: bool) -> None:
    refs = [f"R{(i * 7919) % _ROWS:05d}" for i in range(_ROWS)]  # not sorted by value
    rows = ((i, "s1", "parcel", ref, "announced") for i, ref in enumerate(refs))  # a generator

    async def work(tx: Tx) -> None:
        await tx.insert_many("live_events", ("ts_ms", "site", "kind", "ref", "state"), rows)

    async with Store(store_target) as store:
        if on_thread:
            await store.transaction_on_thread(work)
        else:
            async with store.transaction() as tx:
                await work(tx)
        async with store.read() as tx:
            found = await tx.fetchall("SELECT ts_ms, ref FROM live_events ORDER BY id")
    assert [(r[0], r[1]) for r in found] == list(enumerate(refs))
