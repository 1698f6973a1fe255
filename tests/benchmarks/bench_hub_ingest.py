"""Hub ingestion against the bare MQTT client, end-to-end event latency, AnnounceParcels 10000.

Run: ``python tests/benchmarks/bench_hub_ingest.py`` (defaults finish in about a minute).
Everything runs in this process against a real mosquitto started for the run:

1. **Ingestion rate**: ``--cabinets`` devices publish ``--events`` QoS 1 events (as fast as the
   broker takes them). The baseline is a bare aiomqtt subscriber receiving the same stream (no
   decoding, no storage); the hub decodes, validates, applies and stores each event exactly once
   (batched SQLite transactions, PUBACK after commit). Printed as events/s and hub/bare ratio
   (the issue's goal: >= 0.8).
2. **Latency** at a fixed ``--rate`` events/s: device timestamp -> applied at the hub (same clock),
   p50 and p99.
3. **AnnounceParcels** for one batch of ``--batch`` parcels onto ``--batch`` x 1.2 free
   compartments (allocation through routing.allocate, one transaction, per-parcel answers).

``--store sqlite|postgresql|both`` (default both) picks the hub's store; PostgreSQL is a
throw-away cluster started for the run (tests/support/postgres.py, durable settings). The bare
client's baseline is measured once, before the hubs. The run's own mosquitto queues up to
``max(100000, 2 x --events)`` messages per client, so that a 100,000-event backlog drains to a
slow subscriber instead of being dropped at the default 10,000.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiomqtt  # noqa: E402
import grpc  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

from hub.app import HubApp  # noqa: E402
from hub.settings import HubSettings  # noqa: E402
from lockerhub.codec import encode  # noqa: E402
from lockerhub.topics import Kind, Topic  # noqa: E402
from lockerhub.v1 import common_pb2, device_pb2, dispatch_pb2, dispatch_pb2_grpc  # noqa: E402
from tests.support.broker import BrokerHandle, start_test_broker  # noqa: E402
from tests.support.postgres import PostgresServer, running_postgres  # noqa: E402

SITE = "bench"


def settings(
    tmp: Path,
    broker: BrokerHandle,
    tag: str,
    cabinets: list[tuple[str, int]],
    storage: dict[str, str] | None = None,
) -> HubSettings:
    """The bench hub; ``cabinets`` (id, compartments) are provisioned as each birth reports them
    (births only confirm an operator's layout)."""
    user, password = broker.hub_credentials()
    return HubSettings.from_mapping(
        {
            "broker": {
                "host": broker.host,
                "port": broker.port,
                "username": user,
                "password": password,
                "client_id": f"bench-hub-{tag}",
                "share_group": f"b{tag}",
            },
            "storage": storage or {"path": str(tmp / f"hub-{tag}.db")},
            "grpc": {"port": 0},
            "metrics": {"port": 0},
            "notify": {"path": str(tmp / "notes.jsonl")},
            "sites": [{"id": SITE, "lat": 31.2, "lon": 121.4}],
            "devices": [
                {
                    "id": name,
                    "site": SITE,
                    "compartments": [
                        {
                            "id": f"C{i:04d}",
                            "size": "M",
                            "width_mm": 190,
                            "height_mm": 380,
                            "depth_mm": 640,
                        }
                        for i in range(count)
                    ],
                }
                for name, count in cabinets
            ],
        }
    )


class Device:
    """One cabinet's MQTT client: birth with a layout, then events with growing seq."""

    def __init__(self, broker: BrokerHandle, name: str, compartments: int = 4) -> None:
        self.broker, self.name, self.compartments, self.seq = broker, name, compartments, 0
        self.client: aiomqtt.Client | None = None

    async def __aenter__(self) -> Device:
        user, password = await asyncio.to_thread(self.broker.credentials, self.name, SITE)
        self.client = aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            username=user,
            password=password,
            identifier=self.name,  # the broker binds a device account to its own id
            protocol=aiomqtt.ProtocolVersion.V5,
            max_inflight_messages=200,
        )
        await self.client.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.client is not None
        await self.client.publish(str(Topic(SITE, self.name, Kind.STATUS)), b"", qos=1, retain=True)
        await self.client.__aexit__(None, None, None)

    async def birth(self) -> None:
        assert self.client is not None
        specs = [
            common_pb2.CompartmentSpec(
                compartment_id=f"C{i:04d}",
                size=common_pb2.SIZE_CLASS_M,
                inner=common_pb2.Dimensions(width_mm=190, height_mm=380, depth_mm=640),
                max_weight_g=25_000,
                zone=common_pb2.TEMPERATURE_ZONE_AMBIENT,
            )
            for i in range(self.compartments)
        ]
        status = device_pb2.DeviceStatus(
            state=device_pb2.DeviceStatus.STATE_ONLINE,
            boot_count=1,
            ts_ms=time.time_ns() // 1_000_000,
            kind=device_pb2.DEVICE_KIND_CABINET,
            compartments=specs,
        )
        await self.client.publish(
            str(Topic(SITE, self.name, Kind.STATUS)), encode(status), qos=1, retain=True
        )

    def event(self) -> bytes:
        self.seq += 1
        return encode(
            device_pb2.DeviceEvent(
                event_id=uuid.uuid4().hex,
                seq=self.seq,
                ts_ms=time.time_ns() // 1_000_000,
                door_changed=device_pb2.DoorChanged(
                    compartment_id="C0000", open=self.seq % 2 == 1, commanded=True
                ),
            )
        )

    async def burst(self, n: int, window: int = 50) -> None:
        """``n`` events as fast as the broker acknowledges them, ``window`` in flight at once
        (the broker's per-client queue bounds what a slow subscriber may lag)."""
        assert self.client is not None
        topic = str(Topic(SITE, self.name, Kind.EVENT))
        for start in range(0, n, window):
            count = min(window, n - start)
            await asyncio.gather(
                *(self.client.publish(topic, self.event(), qos=1) for _ in range(count))
            )


async def bare_rate(broker: BrokerHandle, devices: list[Device], per_device: int) -> float:
    """Events/s a bare subscriber receives (the baseline)."""
    user, password = broker.hub_credentials()
    total = len(devices) * per_device
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username=user,
        password=password,
        identifier=f"bare-{uuid.uuid4().hex[:6]}",
        protocol=aiomqtt.ProtocolVersion.V5,
    ) as sub:
        await sub.subscribe(f"lockerhub/v1/{SITE}/+/event", qos=1)
        got = 0
        start = time.perf_counter()
        senders = asyncio.gather(*(d.burst(per_device) for d in devices))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(120):
                async for _ in sub.messages:
                    got += 1
                    if got >= total:
                        break
        elapsed = time.perf_counter() - start
        await senders
    if got < total:
        print(f"  (bare client got {got} of {total} events: the broker dropped some)")
    return got / elapsed


async def applied(app: HubApp) -> int:
    """Events applied so far: each device's highest applied seq, summed (seqs start at 1 and the
    devices send in order). A COUNT(*) of the ledger, polled this often, would cost the database
    a full scan each time (on PostgreSQL more than the hub's own work)."""
    async with app.store.read() as tx:
        row = await tx.fetchone("SELECT COALESCE(SUM(last_seq), 0) FROM devices")
    return int(row[0]) if row else 0


async def hub_rate(app: HubApp, devices: list[Device], per_device: int) -> float:
    total = len(devices) * per_device + await applied(app)
    start = time.perf_counter()
    senders = asyncio.gather(*(d.burst(per_device) for d in devices))
    while await applied(app) < total:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - start
    await senders
    return len(devices) * per_device / elapsed


async def latency(app: HubApp, devices: list[Device], rate: float, seconds: float) -> list[int]:
    first = {d.name: d.seq for d in devices}  # read back by primary key (device, seq)
    n = int(rate * seconds)
    interval = 1.0 / rate
    start = time.perf_counter()
    for i in range(n):
        d = devices[i % len(devices)]
        assert d.client is not None
        await d.client.publish(str(Topic(SITE, d.name, Kind.EVENT)), d.event(), qos=1)
        delay = start + (i + 1) * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    while await applied(app) < sum(d.seq for d in devices):
        await asyncio.sleep(0.05)
    rows = []
    async with app.store.read() as tx:
        for name, seq in first.items():
            rows += await tx.fetchall(
                "SELECT received_ms - device_ts_ms FROM device_events WHERE device = ? AND seq > ?",
                (name, seq),
            )
    return sorted(int(r[0]) for r in rows)


async def announce_batch(app: HubApp, batch: int, prefix: str = "B") -> tuple[float, int]:
    parcels = [
        dispatch_pb2.ParcelAnnouncement(
            parcel_id=f"{prefix}{i:06d}",
            destination_site=SITE,
            dimensions=common_pb2.Dimensions(width_mm=300, height_mm=150, depth_mm=100),
            weight_g=1000,
            recipient_phone="13812341234",
        )
        for i in range(batch)
    ]
    async with grpc.aio.insecure_channel(
        app.grpc_address, options=[("grpc.max_receive_message_length", 64 << 20)]
    ) as channel:
        stub = dispatch_pb2_grpc.DispatchServiceStub(channel)
        start = time.perf_counter()
        resp = await stub.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=parcels), timeout=600
        )
        elapsed = time.perf_counter() - start
    return elapsed, sum(o.accepted for o in resp.outcomes)


def pct(values: list[int], q: float) -> int:
    return values[min(len(values) - 1, int(q * len(values)))]


async def bench(
    args: argparse.Namespace, tmp: Path, broker: BrokerHandle, pg: PostgresServer | None
) -> None:
    per_device = args.events // args.cabinets
    per_cab = max(4, int(args.batch * 1.2) // args.cabinets + 1)
    async with contextlib.AsyncExitStack() as stack:
        devices = [
            await stack.enter_async_context(Device(broker, f"BC{i:03d}", per_cab))
            for i in range(args.cabinets)
        ]
        # Baseline: same devices, same stream, a bare subscriber.
        await asyncio.gather(*(d.burst(50) for d in devices))  # warm the connections
        bare = statistics.median([await bare_rate(broker, devices, per_device) for _ in range(2)])
        print(
            f"ingestion, {args.cabinets} cabinets x {per_device} QoS 1 events (median of 2 runs):"
        )
        print(f"  bare MQTT client   {bare:10.0f} events/s   (baseline)")
        stores: list[tuple[str, dict[str, str] | None]] = []
        if args.store in ("sqlite", "both"):
            stores.append(("sqlite", None))
        if pg is not None:
            stores.append(("postgresql", {"url": pg.create_database("ingest")}))
        for name, storage in stores:
            await one_store(args, tmp, broker, devices, per_device, per_cab, bare, name, storage)


async def one_store(
    args: argparse.Namespace,
    tmp: Path,
    broker: BrokerHandle,
    devices: list[Device],
    per_device: int,
    per_cab: int,
    bare: float,
    name: str,
    storage: dict[str, str] | None,
) -> None:
    """The hub on one store: ingestion rate, latency, one AnnounceParcels batch."""
    async with HubApp(
        settings(
            tmp,
            broker,
            uuid.uuid4().hex[:6],
            [(d.name, d.compartments) for d in devices],
            storage,
        ),
        registry=CollectorRegistry(),
    ) as app:
        runner = asyncio.create_task(app.run())
        try:
            for d in devices:
                await d.birth()
            while True:
                async with app.store.read() as tx:
                    row = await tx.fetchone("SELECT COUNT(*) FROM devices WHERE online = 1")
                if row and row[0] == len(devices):
                    break
                await asyncio.sleep(0.05)
            for d in devices:  # a fresh database: the hub starts from these devices' seq 0
                d.seq = 0
            await hub_rate(app, devices, 20)  # warm-up
            hub = statistics.median([await hub_rate(app, devices, per_device) for _ in range(2)])
            lat = await latency(app, devices, args.rate, args.seconds)
            await announce_batch(app, 1, prefix="W")  # numba compiles the allocator once
            elapsed, accepted = await announce_batch(app, args.batch)
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner

    print(f"hub on {name}:")
    print(f"  hub (apply+store)  {hub:10.0f} events/s   ratio {hub / bare:.2f}  (goal >= 0.9)")
    print(f"  latency at {args.rate:.0f} events/s for {args.seconds:.0f} s ({len(lat)} events):")
    print(f"    p50 {pct(lat, 0.50)} ms   p99 {pct(lat, 0.99)} ms   max {lat[-1]} ms")
    print(
        f"  AnnounceParcels, one batch of {args.batch}: {elapsed:.2f} s"
        f" = {args.batch / elapsed:.0f} parcels/s  ({accepted} accepted, "
        f"{args.cabinets * per_cab} free compartments)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cabinets", type=int, default=20)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    # aiomqtt warns about every pending publish above 10; the bursts are deliberate.
    logging.getLogger("mqtt").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmpdir, contextlib.ExitStack() as stack:
        tmp = Path(tmpdir)
        # A whole backlog must fit one subscriber's queue (the default 10,000 dropped the rest).
        broker = start_test_broker(
            tmp / "mosquitto", max_queued_messages=max(100_000, 2 * args.events)
        )
        stack.callback(broker.stop)
        pg = None
        if args.store in ("postgresql", "both"):
            pg = stack.enter_context(running_postgres(durable=True))
        asyncio.run(bench(args, tmp, broker, pg))


if __name__ == "__main__":
    main()
