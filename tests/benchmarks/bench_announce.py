"""AnnounceParcels cost on each store: one batch of 1k, 10k (and with ``--large``, 100k) parcels
through a real hub (gRPC, store, commands to a real mosquitto), on SQLite and on PostgreSQL.

Cabinets are provisioned by the hub's inventory and marked online and confirmed in the database
(births are the ingestion benchmark's business). Each batch runs on a fresh database. The
baseline in the same run is the allocation alone (the pure function on the same demand and
slots), so the printed ratio is "whole announce / allocation".

Also prints the database size per parcel after announce + deposit + pickup (``--delivered``
parcels driven through the hub's own transitions), extrapolated to a million parcels.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import logging
import pstats
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

from hub.app import HubApp  # noqa: E402
from hub.parcels.allocation import FreeSlot, ParcelDemand, allocate_smallest_fit  # noqa: E402
from hub.settings import HubSettings  # noqa: E402
from lockerhub.v1 import common_pb2, dispatch_pb2, dispatch_pb2_grpc  # noqa: E402
from tests.support.broker import BrokerHandle, start_test_broker  # noqa: E402
from tests.support.postgres import PostgresServer, running_postgres  # noqa: E402

SITE = "bench"
PER_CABINET = 500


def hub_settings(
    tmp: Path, broker: BrokerHandle, storage: dict[str, str], slots: int, *, site: str = SITE
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
            "allocation": {"engine": "smallest_fit"},
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
    app: HubApp, parcels: list[dispatch_pb2.ParcelAnnouncement]
) -> tuple[float, int]:
    async with grpc.aio.insecure_channel(
        app.grpc_address,
        options=[
            ("grpc.max_receive_message_length", 256 << 20),
            ("grpc.max_send_message_length", 256 << 20),
        ],
    ) as channel:
        stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
        start = time.perf_counter()
        resp = await stub.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=parcels), timeout=1800
        )
        elapsed = time.perf_counter() - start
    return elapsed, sum(o.accepted for o in resp.outcomes)


def allocation_alone(n: int) -> float:
    demands = [ParcelDemand(f"B{i}", SITE, 300, 150, 100, 1000, "ambient") for i in range(n)]
    slots = [
        FreeSlot(f"CAB{i // PER_CABINET}", f"C{i:04d}", SITE, 190, 380, 640, 30000, "ambient")
        for i in range(int(n * 1.1) + 1)
    ]
    start = time.perf_counter()
    allocate_smallest_fit(demands, slots)
    return time.perf_counter() - start


async def one_batch(
    tmp: Path, broker: BrokerHandle, storage: dict[str, str], n: int, profile: Path | None
) -> tuple[float, int]:
    settings = hub_settings(tmp, broker, storage, int(n * 1.1) + 1)
    async with HubApp(settings, registry=CollectorRegistry()) as app:
        await bring_online(app)
        runner = asyncio.create_task(app.run())
        try:
            if profile is None:
                return await announce(app, announcements(n))
            prof = cProfile.Profile()
            prof.enable()
            try:
                return await announce(app, announcements(n))
            finally:
                prof.disable()
                prof.dump_stats(profile)
                pstats.Stats(str(profile)).sort_stats("cumulative").print_stats(40)
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner


def storages(tmp: Path, pg: PostgresServer | None, n: int) -> dict[str, dict[str, str]]:
    out = {"sqlite": {"path": str(tmp / f"announce-{n}-{uuid.uuid4().hex[:6]}.db")}}
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
        base = allocation_alone(n)
        for name, storage in storages(tmp, pg, n).items():
            profile = tmp / f"{name}-{n}.prof" if args.profile else None
            elapsed, accepted = await one_batch(tmp, broker, storage, n, profile)
            print(
                f"  {name:10s} {n:7d} parcels  {elapsed:7.2f} s  {n / elapsed:8.0f} parcels/s  "
                f"x{elapsed / base:6.0f} the allocation ({base * 1000:.0f} ms)  "
                f"{accepted} accepted"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--large", action="store_true", help="also the 100k batch")
    parser.add_argument("--sizes", default="", help="comma-separated batch sizes (overrides)")
    parser.add_argument("--profile", action="store_true", help="cProfile each batch")
    args = parser.parse_args()
    logging.getLogger("mqtt").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmpdir, contextlib.ExitStack() as stack:
        tmp = Path(tmpdir)
        broker = start_test_broker(tmp / "mosquitto")
        stack.callback(broker.stop)
        pg = stack.enter_context(running_postgres(durable=True)) if args.store != "sqlite" else None
        asyncio.run(bench(args, tmp, broker, pg))


if __name__ == "__main__":
    main()
