"""AnnounceParcels cost on each store: one batch of 1k, 10k (and with ``--large``, 100k, sent as
ten requests of the API's maximum 10k onto one database) parcels through a real hub (gRPC,
store, commands to a real mosquitto), on SQLite and on PostgreSQL.

Cabinets are provisioned by the hub's inventory and marked online and confirmed in the database
(births are the ingestion benchmark's business). Each batch runs on a fresh database. The
baseline in the same run is the allocation alone (the pure function on the same demand and
slots), so the printed ratio is "whole announce / allocation".

Also prints the database size per parcel after announce + deposit + pickup (``--delivered``
parcels driven through the hub's own transitions), extrapolated to a million parcels: as written
(PostgreSQL's dead row versions included: the run is too short for autovacuum) and compacted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import logging
import os
import pstats
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
import psycopg  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

from hub.api.validate import MAX_BATCH  # noqa: E402
from hub.app import HubApp  # noqa: E402
from hub.parcels.allocation import (  # noqa: E402
    FreeSlot,
    ParcelDemand,
    RoutingAllocator,
    allocate_smallest_fit,
)
from hub.settings import HubSettings  # noqa: E402
from lockerhub.codec import encode  # noqa: E402
from lockerhub.topics import Kind, Topic  # noqa: E402
from lockerhub.v1 import (  # noqa: E402
    common_pb2,
    device_pb2,
    dispatch_pb2,
    dispatch_pb2_grpc,
)
from tests.benchmarks.bench_hub_ingest import Device  # noqa: E402
from tests.support.broker import BrokerHandle, start_test_broker  # noqa: E402
from tests.support.postgres import PostgresServer, running_postgres  # noqa: E402

SITE = "bench"
PER_CABINET = 500


def hub_settings(
    tmp: Path,
    broker: BrokerHandle,
    storage: dict[str, str],
    slots: int,
    *,
    site: str = SITE,
    engine: str = "routing",
) -> HubSettings:
    user, password = broker.hub_credentials()
    cabinets = (slots + PER_CABINET - 1) // PER_CABINET
    tag = uuid.uuid4().hex[:6]
    return HubSettings.from_mapping(
        {
            "broker": {
                "host": broker.host,
                "port": broker.port,
                "username": user,
                "password": password,
                "client_id": f"bench-announce-{tag}",
                "share_group": f"a{tag}",
            },
            "storage": storage,
            "grpc": {"port": 0},
            "metrics": {"port": 0},
            "notify": {"path": str(tmp / f"notes-{tag}.jsonl")},
            "allocation": {"engine": engine},
            "sites": [{"id": site, "lat": 31.2, "lon": 121.4}],
            "devices": [
                {
                    "id": f"{site}-CAB{c:04d}",
                    "site": site,
                    "compartments": [
                        {
                            "id": f"C{i:04d}",
                            "size": "M",
                            "width_mm": 190,
                            "height_mm": 380,
                            "depth_mm": 640,
                        }
                        for i in range(PER_CABINET)
                    ],
                }
                for c in range(cabinets)
            ],
        }
    )


async def bring_online(app: HubApp) -> None:
    """What a birth would record: every cabinet online, every provisioned compartment confirmed."""
    async with app.store.transaction() as tx:
        await tx.execute("UPDATE devices SET online = 1")
        await tx.execute("UPDATE compartments SET confirmed = 1 WHERE provisioned = 1")


def announcements(
    n: int, prefix: str = "B", site: str = SITE
) -> list[dispatch_pb2.ParcelAnnouncement]:
    return [
        dispatch_pb2.ParcelAnnouncement(
            parcel_id=f"{prefix}{i:07d}",
            destination_site=site,
            dimensions=common_pb2.Dimensions(width_mm=300, height_mm=150, depth_mm=100),
            weight_g=1000,
            recipient_phone="13812341234",
        )
        for i in range(n)
    ]


async def announce(
    app: HubApp,
    parcels: list[dispatch_pb2.ParcelAnnouncement],
    server_cpu: Callable[[], float] = lambda: 0.0,
) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds of this process (hub and client), CPU seconds of the
    database server by ``server_cpu``, parcels accepted)."""
    async with grpc.aio.insecure_channel(
        app.grpc_address,
        options=[
            ("grpc.max_receive_message_length", 256 << 20),
            ("grpc.max_send_message_length", 256 << 20),
        ],
    ) as channel:
        stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
        accepted = 0
        start, cpu, server = time.perf_counter(), time.process_time(), server_cpu()
        # The API takes at most MAX_BATCH (10,000) parcels a request: a larger "batch" is that
        # many requests in a row onto one database (how the cost grows with the tables).
        for first in range(0, len(parcels), MAX_BATCH):
            resp = await stub.AnnounceParcels(
                dispatch_pb2.AnnounceParcelsRequest(parcels=parcels[first : first + MAX_BATCH]),
                timeout=1800,
            )
            accepted += sum(o.accepted for o in resp.outcomes)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return elapsed, cpu, server_cpu() - server, accepted


def allocation_alone(n: int, engine: str) -> float:
    """The allocator by itself on the same demand and slots (warmed: numba compiles once per
    process, and the hubs of the run share this process)."""
    allocator = (
        RoutingAllocator({SITE: (31.2, 121.4)}) if engine == "routing" else allocate_smallest_fit
    )

    def problem(k: int) -> tuple[list[ParcelDemand], list[FreeSlot]]:
        demands = [ParcelDemand(f"B{i}", SITE, 300, 150, 100, 1000, "ambient") for i in range(k)]
        slots = [
            FreeSlot(f"CAB{i // PER_CABINET}", f"C{i:04d}", SITE, 190, 380, 640, 30000, "ambient")
            for i in range(int(k * 1.1) + 1)
        ]
        return demands, slots

    allocator(*problem(10))
    demands, slots = problem(n)
    start = time.perf_counter()
    allocator(demands, slots)
    return time.perf_counter() - start


def server_cpu_s(pg: PostgresServer | None, storage: dict[str, str]) -> float:
    """CPU seconds used so far by the PostgreSQL cluster's processes (postmaster and its
    children: the backends doing the COPYs and UPDATEs), 0 for SQLite (in this process)."""
    if pg is None or "url" not in storage:
        return 0.0
    postmaster = (pg.data_dir / "postmaster.pid").read_text().split()[0]
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)"
        except OSError:
            continue  # ended meanwhile
        if postmaster in (fields[1], stat.parent.name):  # ppid, pid
            ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


async def one_batch(
    tmp: Path,
    broker: BrokerHandle,
    storage: dict[str, str],
    n: int,
    profile: Path | None,
    engine: str,
    server_cpu: Callable[[], float],
) -> tuple[float, float, float, int]:
    settings = hub_settings(tmp, broker, storage, int(n * 1.1) + 1, engine=engine)
    async with HubApp(settings, registry=CollectorRegistry()) as app:
        await bring_online(app)
        runner = asyncio.create_task(app.run())
        try:
            if profile is None:
                result = await announce(app, announcements(n), server_cpu)
                wire = await until_sent(app)
                print(
                    f"    its {n} reservation commands on the wire {wire:.2f} s after the answer "
                    f"({n / max(wire, 1e-9):.0f} commands/s published and acknowledged)"
                )
                return result
            # Two profiles: the event loop's thread (validation, gRPC, the answer) and the
            # store's thread, where the transaction's work runs (cProfile sees one thread).
            loop_prof, store_prof = cProfile.Profile(), cProfile.Profile()
            run = app.store.transaction_on_thread

            async def profiled(work: Any) -> Any:
                async def inner(tx: Any) -> Any:
                    store_prof.enable()
                    try:
                        return await work(tx)
                    finally:
                        store_prof.disable()

                return await run(inner)

            app.store.transaction_on_thread = profiled  # type: ignore[method-assign]
            loop_prof.enable()
            try:
                return await announce(app, announcements(n), server_cpu)
            finally:
                loop_prof.disable()
                for name, prof in (("loop", loop_prof), ("store", store_prof)):
                    path = profile.with_suffix(f".{name}.prof")
                    prof.dump_stats(path)
                    print(f"--- {name} thread ({path})")
                    pstats.Stats(str(path)).sort_stats("tottime").print_stats(25)
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner


async def until_sent(app: HubApp) -> float:
    """Seconds until the hub's publisher has every queued command acknowledged by the broker."""
    start = time.perf_counter()
    while True:
        async with app.store.read() as tx:
            row = await tx.fetchone("SELECT COUNT(*) FROM commands WHERE state = 'queued'")
        if row is not None and row[0] == 0:
            return time.perf_counter() - start
        await asyncio.sleep(0.02)


async def database_bytes(app: HubApp) -> int:
    async with app.store.read() as tx:
        if app.store.dialect == "postgresql":
            row = await tx.fetchone("SELECT pg_database_size(current_database())")
        else:
            row = await tx.fetchone(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
            )
    assert row is not None
    return int(row[0])


def compacted_bytes(storage: dict[str, str]) -> int:
    """The database's size once rewritten without dead rows or free pages (PostgreSQL's
    ``VACUUM FULL``, SQLite's ``VACUUM``), the hub closed: the live data alone. A hub that runs
    for months sits between the two figures (autovacuum lets PostgreSQL reuse dead rows' space;
    SQLite reuses free pages), nearer this one."""
    if "url" in storage:
        with psycopg.connect(storage["url"], autocommit=True) as conn:
            conn.execute("VACUUM FULL")
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    else:
        with contextlib.closing(sqlite3.connect(storage["path"])) as conn:
            conn.execute("VACUUM")
            row = conn.execute(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
            ).fetchone()
    assert row is not None
    return int(row[0])


async def delivered(
    tmp: Path, broker: BrokerHandle, storage: dict[str, str], n: int
) -> tuple[float, float, float]:
    """Announce ``n`` parcels, then each cabinet (a real MQTT client, with a real birth)
    reports each parcel deposited and picked up. Returns (bytes per parcel as written, bytes
    per parcel compacted, seconds)."""
    settings = hub_settings(tmp, broker, storage, int(n * 1.1) + 1)
    names = [d.id for d in settings.devices]
    async with (
        HubApp(settings, registry=CollectorRegistry()) as app,
        contextlib.AsyncExitStack() as stack,
    ):
        runner = asyncio.create_task(app.run())
        try:
            devices = {
                name: await stack.enter_async_context(Device(broker, name, PER_CABINET))
                for name in names
            }
            for d in devices.values():
                await d.birth()
            while True:
                async with app.store.read() as tx:
                    row = await tx.fetchone("SELECT COUNT(*) FROM devices WHERE online = 1")
                if row and row[0] == len(devices):
                    break
                await asyncio.sleep(0.05)
            before = await database_bytes(app)
            start = time.perf_counter()
            parcels = announcements(n)
            _, _, _, accepted = await announce(app, parcels)
            assert accepted == n, accepted
            async with app.store.read() as tx:
                rows = await tx.fetchall("SELECT id, device, compartment FROM parcels")
            by_device: dict[str, list[tuple[str, str]]] = {}
            for r in rows:
                by_device.setdefault(r["device"], []).append((r["id"], r["compartment"]))

            async def run(device: Device, items: list[tuple[str, str]]) -> None:
                assert device.client is not None
                topic = str(Topic(SITE, device.name, Kind.EVENT))
                for make in (
                    lambda p, c: {"deposited": device_pb2.Deposited(parcel_id=p, compartment_id=c)},
                    lambda p, c: {"picked_up": device_pb2.PickedUp(parcel_id=p, compartment_id=c)},
                ):
                    for start_i in range(0, len(items), 50):
                        batch = items[start_i : start_i + 50]
                        events = []
                        for p, c in batch:
                            device.seq += 1
                            events.append(
                                device_pb2.DeviceEvent(
                                    event_id=uuid.uuid4().hex,
                                    seq=device.seq,
                                    ts_ms=time.time_ns() // 1_000_000,
                                    **make(p, c),
                                )
                            )
                        await asyncio.gather(
                            *(device.client.publish(topic, encode(e), qos=1) for e in events)
                        )

            await asyncio.gather(*(run(devices[d], items) for d, items in by_device.items()))
            while True:
                async with app.store.read() as tx:
                    row = await tx.fetchone(
                        "SELECT COUNT(*) FROM parcels WHERE state = 'picked_up'"
                    )
                if row and row[0] >= n:
                    break
                await asyncio.sleep(0.1)
            elapsed = time.perf_counter() - start
            after = await database_bytes(app)
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
    return (after - before) / n, (compacted_bytes(storage) - before) / n, elapsed


def storages(tmp: Path, pg: PostgresServer | None, n: int, which: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    if which in ("sqlite", "both"):
        out["sqlite"] = {"path": str(tmp / f"announce-{n}-{uuid.uuid4().hex[:6]}.db")}
    if pg is not None:
        out["postgresql"] = {"url": pg.create_database("bench")}
    return out


async def bench(
    args: argparse.Namespace, tmp: Path, broker: BrokerHandle, pg: PostgresServer | None
) -> None:
    sizes = [1_000, 10_000] + ([100_000] if args.large else [])
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    print("AnnounceParcels, one batch (fresh database each; baseline: the allocation alone):")
    for n in sizes:
        base = allocation_alone(n, args.engine)
        for name, storage in storages(tmp, pg, n, args.store).items():
            profile = tmp / f"{name}-{n}.prof" if args.profile else None
            elapsed, cpu, server, accepted = await one_batch(
                tmp,
                broker,
                storage,
                n,
                profile,
                args.engine,
                functools.partial(server_cpu_s, pg, storage),
            )
            print(
                f"  {name:10s} {n:7d} parcels  {elapsed:7.2f} s  {n / elapsed:8.0f} parcels/s  "
                f"x{elapsed / base:6.0f} the allocation ({base * 1000:.0f} ms)  "
                f"CPU: hub+client {cpu:6.2f} s, PostgreSQL {server:6.2f} s  {accepted} accepted"
            )
    if args.delivered:
        n = args.delivered
        print(f"database size, {n} parcels announced, deposited and picked up (real events):")
        for name, storage in storages(tmp, pg, n, args.store).items():
            per_parcel, compacted, elapsed = await delivered(tmp, broker, storage, n)
            print(
                f"  {name:10s} {per_parcel:7.0f} bytes/parcel = "
                f"{per_parcel * 1e6 / 2**30:6.2f} GiB per million parcels delivered "
                f"({elapsed:.1f} s); compacted {compacted:7.0f} bytes/parcel = "
                f"{compacted * 1e6 / 2**30:6.2f} GiB per million"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--large", action="store_true", help="also the 100k batch")
    parser.add_argument("--engine", choices=["routing", "smallest_fit"], default="routing")
    parser.add_argument("--sizes", default="", help="comma-separated batch sizes (overrides)")
    parser.add_argument("--profile", action="store_true", help="cProfile each batch")
    parser.add_argument(
        "--delivered", type=int, default=5_000, help="parcels for the size figure (0: skip)"
    )
    args = parser.parse_args()
    logging.getLogger("mqtt").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmpdir, contextlib.ExitStack() as stack:
        tmp = Path(tmpdir)
        broker = start_test_broker(tmp / "mosquitto")
        stack.callback(broker.stop)
        pg = stack.enter_context(running_postgres(durable=True)) if args.store != "sqlite" else None
        asyncio.run(bench(args, tmp, broker, pg))
    # ru_maxrss is in KiB on Linux: the largest batch's footprint, hub and client together.
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process (hub + client): {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
