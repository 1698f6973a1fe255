"""Ingestion by 1, 2 and 3 hub processes on one store, against the bare MQTT client.

Run: ``python tests/benchmarks/bench_hub_ingest_multi.py`` (about four minutes on 2 cores).
A real mosquitto; ``--cabinets`` devices publish ``--events`` QoS 1 events as fast as the broker
takes them. Baseline: one bare aiomqtt subscriber, in a process of its own like the hubs,
receiving the same stream (no decoding, no storage). Then 1, 2, 3 ``lockerhub hub`` processes
(MQTT 5 shared subscription, one store) take it, each event decoded, authorised, applied once
and stored before its PUBACK; the time runs until the last event is in the shared store.
Printed as events/s, as ratios to the baseline and to one hub, and as the hubs' CPU
milliseconds per event (summed over the hub processes: the figure the machine's load does not
move). On this machine the hubs share its two cores with the broker, the devices and this script.
``--store sqlite|postgresql|both`` (default both): the hubs' one store; PostgreSQL is a
throw-away cluster started for the run (tests/support/postgres.py, durable settings).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiomqtt  # noqa: E402

from demo.district_hub import cpu_seconds  # noqa: E402
from tests.benchmarks.bench_hub_ingest import SITE, Device  # noqa: E402
from tests.support.broker import BrokerHandle, start_test_broker  # noqa: E402
from tests.support.processes import Proc  # noqa: E402

# A bare client that hears nothing for this long has lost events (the broker dropped them).
_SILENCE_S = 30.0


def hub_toml(tmp: Path, broker: BrokerHandle, index: int, devices: list[Device], url: str) -> Path:
    user, password = broker.hub_credentials()
    inventory = "".join(
        f'[[devices]]\nid = "{d.name}"\nsite = "{SITE}"\n'
        + "".join(
            f'[[devices.compartments]]\nid = "C{i:04d}"\nsize = "M"\n'
            "width_mm = 190\nheight_mm = 380\ndepth_mm = 640\n"
            for i in range(d.compartments)
        )
        for d in devices
    )
    path = tmp / f"hub-{index}.toml"
    path.write_text(
        f"""
[cluster]
hub_id = "bench-{index}"
resend_grace_s = 5
[broker]
host = "{broker.host}"
port = {broker.port}
username = "{user}"
password = "{password}"
share_group = "bench"
[storage]
{f'url = "{url}"' if url else f'path = "{tmp / "hub.db"}"'}
[grpc]
port = 0
[metrics]
port = 0
[notify]
path = "{tmp / "notes.jsonl"}"
[[sites]]
id = "{SITE}"
lat = 31.2
lon = 121.4
{inventory}"""
    )
    return path


async def bare_subscriber(host: str, port: int, user: str, password: str, total: int) -> None:
    """The baseline's process: subscribe, say ready, receive ``total`` events, print the time."""
    async with aiomqtt.Client(
        host, port, username=user, password=password, protocol=aiomqtt.ProtocolVersion.V5
    ) as sub:
        await sub.subscribe(f"lockerhub/v1/{SITE}/+/event", qos=1)
        print("bare ready", flush=True)
        got = 0
        try:
            while got < total:
                # Silence this long means the broker dropped the rest: say so, never hang.
                async with asyncio.timeout(_SILENCE_S):
                    await anext(sub.messages)
                got += 1
        except TimeoutError:
            print(f"bare short {got} of {total}", flush=True)
            return
        print(f"bare done {time.time():.6f}", flush=True)


async def bare_rate(broker: BrokerHandle, devices: list[Device], per_device: int) -> float:
    """Events/s the bare subscriber process receives the stream at."""
    user, password = broker.hub_credentials()
    total = len(devices) * per_device
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--bare",
            broker.host,
            str(broker.port),
            user,
            password,
            str(total),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        assert line.startswith("bare ready"), line
        start = time.time()
        await asyncio.gather(*(d.burst(per_device) for d in devices))
        done = await asyncio.to_thread(proc.stdout.readline)
        if not done.startswith("bare done"):
            raise SystemExit(f"bare client: {done.strip()}: the broker dropped some events")
        return total / (float(done.split()[2]) - start)
    finally:
        proc.kill()
        proc.wait()


def count(target: Path | str, sql: str) -> int:
    """One number from the store (SQLite file read-only, or PostgreSQL)."""
    if isinstance(target, Path):
        uri = f"file:{target}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as conn:
            return int(conn.execute(sql).fetchone()[0])
    import psycopg

    with psycopg.connect(target, autocommit=True) as conn:
        row = conn.execute(sql.encode()).fetchone()
        return int(row[0]) if row else 0


def applied(target: Path | str) -> int:
    return count(target, "SELECT COUNT(*) FROM device_events")


@dataclass
class Drain:
    """One drain: events/s, and the hubs' CPU milliseconds per event (noise-proof)."""

    rate: float
    cpu_ms: float


async def drain(
    target: Path | str, devices: list[Device], per_device: int, pids: list[int]
) -> Drain:
    """Events/s from the first publish until the store holds every event."""
    events = len(devices) * per_device
    total = events + await asyncio.to_thread(applied, target)
    cpu0 = sum(cpu_seconds(pid) for pid in pids)
    start = time.perf_counter()
    senders = asyncio.gather(*(d.burst(per_device) for d in devices))
    while await asyncio.to_thread(applied, target) < total:
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - start
    cpu = sum(cpu_seconds(pid) for pid in pids) - cpu0
    await senders
    return Drain(events / elapsed, 1000 * cpu / events)


async def hubs_rate(
    tmp: Path, broker: BrokerHandle, devices: list[Device], count_: int, per_device: int, url: str
) -> Drain:
    configs = [hub_toml(tmp, broker, i, devices, url) for i in range(count_)]
    target: Path | str = url or tmp / "hub.db"
    procs: list[Proc] = []
    try:
        for config in configs:  # one after the other: the first migrates the store
            proc = Proc(["hub", "--config", str(config)])
            procs.append(proc)
            await asyncio.to_thread(proc.wait_for, r"hub ready", 60)
        for d in devices:
            await d.birth()
        online = "SELECT COUNT(*) FROM devices WHERE online = 1"
        while await asyncio.to_thread(count, target, online) < len(devices):
            await asyncio.sleep(0.05)
        pids = [proc.popen.pid for proc in procs]
        await drain(target, devices, 20, pids)  # warm-up
        runs = [await drain(target, devices, per_device, pids) for _ in range(2)]
        return Drain(
            statistics.median(r.rate for r in runs), statistics.median(r.cpu_ms for r in runs)
        )
    finally:
        for proc in procs:
            proc.terminate()


async def bench(
    args: argparse.Namespace, tmp: Path, broker: BrokerHandle, stores: dict[str, Any]
) -> None:
    per_device = args.events // args.cabinets
    async with contextlib.AsyncExitStack() as stack:
        devices = [
            await stack.enter_async_context(Device(broker, f"MB{i:03d}"))
            for i in range(args.cabinets)
        ]
        await asyncio.gather(*(d.burst(50) for d in devices))  # warm the connections
        bare = statistics.median([await bare_rate(broker, devices, per_device) for _ in range(2)])
        rates: dict[tuple[str, int], Drain] = {}
        for name, server in stores.items():
            for hubs in args.hubs:
                run = tmp / f"run-{name}-{hubs}"
                run.mkdir()
                url = "" if server is None else server.create_database("multi")
                for d in devices:  # a fresh store: the hubs start from seq 0
                    d.seq = 0
                rates[name, hubs] = await hubs_rate(run, broker, devices, hubs, per_device, url)
    print(f"ingestion, {args.cabinets} cabinets x {per_device} QoS 1 events (median of 2 runs):")
    print(f"  bare MQTT client              {bare:8.0f} events/s   (baseline)")
    for (name, hubs), result in rates.items():
        one = rates[name, args.hubs[0]]
        print(
            f"  {name:10} {hubs} hub process{'es' if hubs > 1 else '  '}  {result.rate:8.0f} "
            f"events/s   ratio {result.rate / bare:.2f}   vs {args.hubs[0]} hub "
            f"{result.rate / one.rate:.2f}   hubs' CPU {result.cpu_ms:.3f} ms/event"
        )


def main() -> None:
    if sys.argv[1:2] == ["--bare"]:
        host, port, user, password, total = sys.argv[2:7]
        asyncio.run(bare_subscriber(host, int(port), user, password, int(total)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cabinets", type=int, default=20)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--hubs", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    logging.getLogger("mqtt").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmpdir, contextlib.ExitStack() as stack:
        tmp = Path(tmpdir)
        stores: dict[str, Any] = {}
        if args.store in ("sqlite", "both"):
            stores["sqlite"] = None
        if args.store in ("postgresql", "both"):
            from tests.support.postgres import running_postgres

            stores["postgresql"] = stack.enter_context(running_postgres(durable=True))
        # A whole backlog must fit one subscriber's queue (the default 10,000 drops the rest).
        broker = start_test_broker(
            tmp / "mosquitto", max_queued_messages=max(100_000, 2 * args.events)
        )
        try:
            asyncio.run(bench(args, tmp, broker, stores))
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
