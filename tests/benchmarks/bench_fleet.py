"""A fleet at scale against the project's broker and a hub: memory, threads and CPU per cabinet.

Run: ``python tests/benchmarks/bench_fleet.py`` (defaults: fleets of 1,000, 2,000, 5,000 and
10,000 cabinets, a 60 s steady window each; about 25 minutes on a quiet 2-core machine;
``--sizes 1000,2000`` for a shorter run).
For each size N, on fresh processes:

1. mosquitto with the project's config (``hub.broker.mosquitto``: dynamic security, one account
   per cabinet bound to its client id), a hub (``lockerhub hub``, its own process, with the N
   cabinets in its inventory) and ``lockerhub sim fleet`` (its own process, the shared database
   and ticker, every cabinet with its own account);
2. waits until every cabinet is connected (birth acknowledged by the broker) and the hub lists all
   of them online (births applied), and prints how long each took;
3. measures a steady window: the fleet's resident memory and threads, the CPU share of one core of
   fleet, hub and broker, and the fleet's outbox backlog (oldest event waiting, from its reports).
   The cabinets have door activity (``--activity`` open/close pairs per cabinet per second,
   each two door events and two alarms) and telemetry every ``--telemetry`` seconds.

The baseline, measured in the same run, is a fleet of one cabinet: per-1,000 figures are the
difference to it. Other sessions share this machine's cores: CPU figures are upper bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

from demo.district_hub import cpu_seconds, hub_process  # noqa: E402
from demo.fleet import FleetSpec, raise_fd_limit  # noqa: E402
from hub.broker.mosquitto import Account, BrokerConfig, Mosquitto, new_password  # noqa: E402
from lockerhub.v1 import fleet_pb2, fleet_pb2_grpc  # noqa: E402

LOCKERHUB = Path(sys.executable).with_name("lockerhub")
SITE = "fleet-site"
LAYOUT = "S:6,M:4"  # demo.fleet's cabinets
_BACKLOG = re.compile(r"outbox (\d+) entries, oldest event waiting (-|[\d.]+ s)")


@dataclass(slots=True)
class Result:
    n: int
    connect_s: float = 0.0
    connect_cpu_s: float = 0.0  # the fleet's CPU seconds from start to every cabinet connected
    online_s: float = 0.0
    rss_mb: float = 0.0
    threads: int = 0
    fleet_cpu: float = 0.0
    hub_cpu: float = 0.0
    broker_cpu: float = 0.0
    backlog: list[tuple[int, float]] = field(default_factory=list)


def proc_status(pid: int) -> tuple[float, int]:
    rss, threads = 0.0, 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss, threads


def hub_mapping(broker: Mosquitto, hub: Account, workdir: Path, ids: list[str]) -> dict:  # type: ignore[type-arg]
    return {
        "broker": {
            "host": broker.host,
            "port": broker.port,
            "username": hub.username,
            "password": hub.password,
        },
        "storage": {"path": str(workdir / "hub.db")},
        "grpc": {"port": 0},
        "metrics": {"port": 0},
        "ocpp": {"enabled": False, "port": 0},
        "sites": [{"id": SITE, "name": "Fleet site", "lat": 31.2, "lon": 121.4}],
        "devices": [{"id": d, "site": SITE, "layout": LAYOUT} for d in ids],
    }


async def online(channel: grpc.aio.Channel) -> int:
    listed = await fleet_pb2_grpc.FleetServiceStub(channel).ListCabinets(
        fleet_pb2.ListCabinetsRequest(), timeout=60
    )
    return sum(c.online for c in listed.cabinets)


async def run_size(n: int, args: argparse.Namespace, tmp: Path) -> Result:
    work = tmp / f"n{n}"
    prefix = f"f{n}"
    ids = FleetSpec(cabinets=n, prefix=prefix).device_ids()
    hub_account = Account(username="hub", password=new_password())
    accounts = {"hub": hub_account} | {
        d: Account(username=d, password=new_password(), site=SITE, device=d) for d in ids
    }
    creds = work / "accounts.json"
    result = Result(n)
    async with contextlib.AsyncExitStack() as stack:
        broker = await stack.enter_async_context(
            Mosquitto(BrokerConfig(workdir=work / "broker"), accounts=accounts)
        )
        creds.write_text(
            json.dumps({d: {"username": d, "password": accounts[d].password} for d in ids})
        )
        hub = await stack.enter_async_context(
            hub_process(hub_mapping(broker, hub_account, work, ids), work)
        )
        hub_task = asyncio.create_task(hub.run())
        channel = await stack.enter_async_context(grpc.aio.insecure_channel(hub.grpc_address))
        assert hub.pid is not None
        assert broker._proc is not None
        broker_pid = broker._proc.pid
        fleet = await asyncio.create_subprocess_exec(
            *(str(LOCKERHUB), "sim", "fleet", "--cabinets", str(n), "--prefix", prefix),
            *("--broker", f"{broker.host}:{broker.port}", "--credentials", str(creds)),
            *("--data", str(work / "fleet"), "--telemetry", str(args.telemetry)),
            *("--activity", str(args.activity), "--report", "5"),
            stdout=asyncio.subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert fleet.stdout is not None
            t0 = time.monotonic()
            async with asyncio.timeout(120 + n * 0.3):  # a crowded machine connects slowly
                while b"cabinets connected" not in (line := await fleet.stdout.readline()):
                    if not line:
                        raise RuntimeError(f"the fleet of {n} exited ({await fleet.wait()})")
            result.connect_cpu_s = cpu_seconds(fleet.pid)
            text = line.decode()
            result.connect_s = float(text.split(" in ")[1].split()[0]) if " in " in text else 0.0
            async with asyncio.timeout(120 + n * 0.1):
                while await online(channel) < n:
                    await asyncio.sleep(1)
            result.online_s = time.monotonic() - t0

            async def backlog() -> None:
                assert fleet.stdout is not None
                while line := await fleet.stdout.readline():
                    if m := _BACKLOG.search(line.decode()):
                        age = 0.0 if m.group(2) == "-" else float(m.group(2).split()[0])
                        result.backlog.append((int(m.group(1)), age))

            reader = asyncio.create_task(backlog())
            await asyncio.sleep(args.settle)
            result.backlog.clear()
            pids = (fleet.pid, hub.pid, broker_pid)
            cpu0, w0 = [cpu_seconds(p) for p in pids], time.monotonic()
            await asyncio.sleep(args.window)
            wall = time.monotonic() - w0
            shares = [(cpu_seconds(p) - c) / wall for p, c in zip(pids, cpu0, strict=True)]
            result.fleet_cpu, result.hub_cpu, result.broker_cpu = shares
            result.rss_mb, result.threads = proc_status(fleet.pid)
            reader.cancel()
        finally:
            if fleet.returncode is None:
                fleet.send_signal(signal.SIGINT)
                try:
                    async with asyncio.timeout(60):
                        await fleet.wait()
                except TimeoutError:
                    fleet.kill()
                    await fleet.wait()
            hub_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hub_task
    return result


def report(r: Result, base: Result | None) -> None:
    lag = max((age for _, age in r.backlog), default=0.0)
    depth = max((d for d, _ in r.backlog), default=0)
    print(
        f"fleet of {r.n}: connected in {r.connect_s:.1f} s ({r.connect_cpu_s:.1f} CPU s with "
        f"start-up), all online at the hub after "
        f"{r.online_s:.1f} s; RSS {r.rss_mb:.0f} MB, {r.threads} threads; CPU of a core: "
        f"fleet {100 * r.fleet_cpu:.1f} %, hub {100 * r.hub_cpu:.1f} %, "
        f"broker {100 * r.broker_cpu:.1f} %; outbox at most {depth} entries, "
        f"oldest event waited at most {lag:.1f} s",
        flush=True,
    )
    if base is not None and r.n > base.n:
        k = 1000 / (r.n - base.n)
        print(
            f"  per 1,000 cabinets over the 1-cabinet baseline: "
            f"{(r.rss_mb - base.rss_mb) * k:.0f} MB, "
            f"fleet {100 * (r.fleet_cpu - base.fleet_cpu) * k:.1f} % of a core, "
            f"hub {100 * (r.hub_cpu - base.hub_cpu) * k:.1f} % of a core",
            flush=True,
        )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,2000,5000,10000", help="comma-separated fleet sizes")
    ap.add_argument("--window", type=float, default=60.0, help="steady window (s)")
    ap.add_argument("--settle", type=float, default=10.0, help="wait after all online (s)")
    ap.add_argument("--telemetry", type=float, default=60.0)
    ap.add_argument("--activity", type=float, default=0.002, help="per cabinet per second")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    # mosquitto inherits this process's limit: one descriptor per connection.
    raise_fd_limit(max(sizes) + 256)
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        base = await run_size(1, args, Path(tmp))
        report(base, None)
        for n in sizes:
            report(await run_size(n, args, Path(tmp)), base)
    print(f"(cores on this machine: {os.cpu_count()}; other work shares them)")


if __name__ == "__main__":
    asyncio.run(main())
