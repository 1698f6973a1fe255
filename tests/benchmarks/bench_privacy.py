"""Issue 15: what personal-data hygiene costs the store, and the partner feed's filtering.

Run: ``python tests/benchmarks/bench_privacy.py`` (``--parcels`` scales it). Three figures, each a
ratio to a baseline measured in the same run on the same machine:

- parcel writes (insert a parcel with its contact and transitions, then close it and purge it)
  with ``secure_delete=ON`` (the hub's setting) against the same writes with it OFF;
- the retention purge of every parcel plus ``wal_checkpoint(TRUNCATE)`` against inserting them;
- one partner (a tenth of the parcels) catching up on the whole journal through the carrier
  filter, against an operator reading the whole journal unfiltered (WatchEvents' query).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hub.models import Dims, ParcelRecord, ParcelState, Transition, Zone  # noqa: E402
from hub.store import (  # noqa: E402
    Store,
    Tx,
    sqlite_store,
)
from hub.store.repo import journal, privacy  # noqa: E402
from hub.store.repo import parcels as parcels_repo  # noqa: E402
from hub.store.repo import partners as partners_repo  # noqa: E402
from lockerhub.sqlite import DEFAULT_PRAGMAS  # noqa: E402

CARRIERS = tuple(f"C{i}" for i in range(10))
STEPS = (ParcelState.ANNOUNCED, ParcelState.RESERVED, ParcelState.DEPOSITED, ParcelState.PICKED_UP)


def record(i: int) -> ParcelRecord:
    return ParcelRecord(
        parcel_id=f"P{i:07d}",
        state=ParcelState.ANNOUNCED,
        site="S1",
        cabinet_id="",
        compartment_id="",
        dims=Dims(100, 100, 100),
        weight_g=500,
        zone=Zone.AMBIENT,
        phone_masked="138****0000",
        electronic_waybill=True,
        reusable_container=False,
        pickup_deadline_ms=0,
        carrier_id=CARRIERS[i % len(CARRIERS)],
    )


async def insert(store: Store, n: int) -> float:
    t0 = time.perf_counter()
    for start in range(0, n, 500):

        async def work(tx: Tx, start: int = start) -> None:
            for i in range(start, min(n, start + 500)):
                await parcels_repo.insert_parcel(
                    tx, record(i), phone=f"138{i:08d}", reservation_expires_ms=0, now_ms=1
                )
                for step in STEPS:
                    await parcels_repo.add_transition(
                        tx, f"P{i:07d}", Transition(step, 2, "hub", "")
                    )
                await parcels_repo.set_state(tx, f"P{i:07d}", ParcelState.PICKED_UP, 2)

        await store.transaction_on_thread(work)
    return time.perf_counter() - t0


async def purge(store: Store) -> float:
    t0 = time.perf_counter()
    while True:

        async def work(tx: Tx) -> int:
            due = await privacy.due_purges(tx, ("picked_up",), 10, 500)
            for parcel_id in due:
                await privacy.purge(tx, parcel_id, 3)
            return len(due)

        if await store.transaction_on_thread(work) < 500:
            break
    await store.erase_history()
    return time.perf_counter() - t0


async def read_all(store: Store, carriers: tuple[str, ...] | None) -> tuple[float, int]:
    t0, after, rows = time.perf_counter(), 0, 0
    while True:
        async with store.read() as tx:
            if carriers is None:
                page = await journal.after(tx, after, upto=2**62, limit=500)
                if not page:
                    break
                after, rows = page[-1].cursor, rows + len(page)
            else:
                found, scanned = await partners_repo.feed_after(
                    tx, after, carriers, 500, upto=2**62
                )
                rows += len(found)
                if scanned == after:
                    break
                after = scanned
    return time.perf_counter() - t0, rows


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        timings = {}
        for mode in ("OFF", "ON"):
            sqlite_store.STORE_PRAGMAS = (*DEFAULT_PRAGMAS, f"PRAGMA secure_delete={mode}")
            async with Store(Path(tmp) / f"hub-{mode}.db") as store:
                ins = await insert(store, n)
                pur = await purge(store)
                timings[mode] = (ins, pur)
                if mode == "ON":
                    full, rows_all = await read_all(store, None)
                    part, rows_one = await read_all(store, ("C3",))
        (ins_off, pur_off), (ins_on, pur_on) = timings["OFF"], timings["ON"]
    print(f"{n} parcels, {len(STEPS)} transitions each, 10 carriers")
    print(f"insert+close, secure_delete ON vs OFF: {ins_on / ins_off:.2f}x "
          f"({ins_off * 1e6 / n:.0f} us/parcel OFF)")  # fmt: skip
    print(f"purge+checkpoint, secure_delete ON vs OFF: {pur_on / pur_off:.2f}x")
    print(f"purge+checkpoint vs insert (ON): {pur_on / ins_on:.2f}x")
    print(f"partner catch-up ({rows_one} of {rows_all} rows) vs full journal read: "
          f"{part / full:.2f}x")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parcels", type=int, default=20_000)
    asyncio.run(main(parser.parse_args().parcels))
