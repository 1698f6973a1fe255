"""A sorting line at a real sorter's rate with plan updates: events/s at the hub, decision p99.

Run: ``python tests/benchmarks/bench_sorting_line.py`` (defaults: about two minutes). A real hub
(in this process) and mosquitto, a ``lockerhub edge`` sorting-line agent (a process) on the
simulated line served over Modbus TCP (``lockerhub sim modbus-line``, a process of its own, so that
the hub's work never delays the line's answers). The line
inducts 10 000 parcels an hour, time-compressed by ``--speedup`` (default 10: 27.8 parcels/s, a
plan update every 18 s instead of every 3 minutes), for ``--seconds``. Printed, each beside a
baseline measured in the same run:

1. **Events/s at the hub**: line events applied per second (ParcelSorted, ParcelRejected,
   SortPlanApplied), against the events the line offered in the same window (ratio 1.0 = the hub
   keeps up), and the hub's own ingest duration p99.
2. **Decision latency**: induction queued at the line controller -> its divert command arrives,
   p50/p99, against a bare Modbus master polling the same line at the same period and diverting at
   once (no plan, no store, no MQTT): what the agent adds over the wire and the poll.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT, ROOT / "tests" / "benchmarks"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import grpc  # noqa: E402
from bench_hub_ingest import SITE, Device, settings  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402
from pymodbus.client import AsyncModbusTcpClient  # noqa: E402

from hub.app import HubApp  # noqa: E402
from hub.settings.inventory import DeviceInventorySettings  # noqa: E402
from lockerhub.v1 import (  # noqa: E402
    common_pb2,
    dispatch_pb2,
    dispatch_pb2_grpc,
    sorting_pb2,
    sorting_pb2_grpc,
)
from tests.support.broker import BrokerHandle, start_test_broker  # noqa: E402
from tests.support.processes import Proc  # noqa: E402

CHUTES = ["CH01", "CH02", "HOLD", "EX"]
PER_HOUR = 10_000
PLAN_EVERY_S = 180.0
POLL_S = 0.01


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000 if s else float("nan")


def start_line(tmp: Path, name: str, parcels: list[str], rate: float) -> tuple[Proc, int, Path]:
    """The simulated line process, fed ``parcels``; returns it, its port and the go file."""
    manifest, go = tmp / f"{name}.jsonl", tmp / f"{name}.go"
    manifest.write_text(
        "".join(json.dumps({"parcel_id": p, "destination": SITE}) + "\n" for p in parcels)
    )
    proc = Proc(
        ["sim", "modbus-line", "--port", "0", "--chutes", ",".join(CHUTES), "--manifest",
         str(manifest), "--rate", str(rate), "--go-file", str(go), "--latencies",
         str(tmp / f"{name}.latencies.json")]
    )  # fmt: skip
    m = proc.wait_for(r"modbus line on [\d.]+:(\d+)")
    return proc, int(m.group(1)), go


def stop_line(proc: Proc, tmp: Path, name: str) -> list[float]:
    proc.terminate()
    return [float(x) for x in json.loads((tmp / f"{name}.latencies.json").read_text())]


async def bare_master(port: int, stop: asyncio.Event) -> None:
    """The baseline controller: drain the queue every POLL_S and divert each item to chute 1."""
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1)
    await client.connect()
    try:
        while not stop.is_set():
            while True:
                r = await client.read_input_registers(0, count=43, device_id=1)
                seq, kind, item = r.registers[0], r.registers[1], r.registers[2]
                if seq == 0:
                    break
                await client.write_register(0, seq, device_id=1)
                if kind == 1:
                    await client.write_registers(1, [item, 1], device_id=1)
            await asyncio.sleep(POLL_S)
    finally:
        client.close()


async def baseline(tmp: Path, rate: float, count: int) -> list[float]:
    proc, port, go = await asyncio.to_thread(
        start_line, tmp, "bare", [f"B{i}" for i in range(count)], rate
    )
    stop = asyncio.Event()
    master = asyncio.create_task(bare_master(port, stop))
    go.write_text("go")
    await asyncio.to_thread(proc.wait_for, r"inducted \d+ parcels", count / rate + 60)
    await asyncio.sleep(0.5)
    stop.set()
    await master
    return await asyncio.to_thread(stop_line, proc, tmp, "bare")


async def line_events(app: HubApp, line_id: str) -> int:
    async with app.store.read() as tx:
        row = await tx.fetchone("SELECT COUNT(*) FROM device_events WHERE device = ?", (line_id,))
    return int(row[0]) if row else 0


async def bench(args: argparse.Namespace, tmp: Path, broker: BrokerHandle) -> None:
    rate = PER_HOUR / 3600 * args.speedup
    plan_every = PLAN_EVERY_S / args.speedup
    total = int(rate * args.seconds)
    tag = uuid.uuid4().hex[:6]
    cabinets = [(f"bc{tag}{i}", 500) for i in range(-(-int(total * 1.1) // 500))]
    line_id = f"line{tag}"
    base = settings(tmp, broker, tag, cabinets)
    hub_settings = dataclasses.replace(
        base,
        devices=(
            *base.devices,
            DeviceInventorySettings(id=line_id, site=SITE, kind="sorting_line"),
        ),
    )
    print(f"baseline: bare Modbus master at {rate:.1f} inductions/s ...", flush=True)
    bare = await baseline(tmp, rate, min(total, 600))
    async with HubApp(hub_settings, registry=CollectorRegistry()) as app:
        runner = asyncio.create_task(app.run())
        channel = grpc.aio.insecure_channel(app.grpc_address)
        devices = [Device(broker, name, n) for name, n in cabinets]
        for d in devices:
            await d.__aenter__()
            await d.birth()
        await asyncio.sleep(1.0)
        dispatch = dispatch_pb2_grpc.DispatchServiceStub(channel)
        sorting = sorting_pb2_grpc.SortingServiceStub(channel)
        parcels = [f"S{tag}-{i:06d}" for i in range(total)]
        for start in range(0, total, 2000):
            resp = await dispatch.AnnounceParcels(
                dispatch_pb2.AnnounceParcelsRequest(
                    parcels=[
                        dispatch_pb2.ParcelAnnouncement(
                            parcel_id=p,
                            destination_site=SITE,
                            dimensions=common_pb2.Dimensions(
                                width_mm=100, height_mm=100, depth_mm=100
                            ),
                            weight_g=500,
                            recipient_phone="13812345678",
                        )
                        for p in parcels[start : start + 2000]
                    ]
                ),
                timeout=300,
            )
            assert all(o.accepted for o in resp.outcomes), resp.outcomes[0]

        async def set_plan(chute: str) -> int:
            p = await sorting.SetSortPlan(
                sorting_pb2.SetSortPlanRequest(
                    line_id=line_id,
                    rules=[sorting_pb2.SortPlanRule(destination=SITE, chute_id=chute)],
                    exception_chute="EX",
                    hold_chute="HOLD",
                )
            )
            return p.version

        version = await set_plan("CH01")
        sim, port, go = await asyncio.to_thread(start_line, tmp, "line", parcels, rate)
        user, password = await asyncio.to_thread(broker.credentials, line_id, SITE)
        config = tmp / "line.toml"
        config.write_text(
            f'[device]\nid = "{line_id}"\nsite = "{SITE}"\nkind = "sorting_line"\n'
            f'[broker]\nhost = "{broker.host}"\nport = {broker.port}\n'
            f'username = "{user}"\npassword = "{password}"\n'
            f'[storage]\npath = "{tmp / "line.db"}"\n[telemetry]\ninterval_s = 5\n'
            f'[driver]\nkind = "modbus"\nmodbus_host = "127.0.0.1"\n'
            f"modbus_port = {port}\nmodbus_poll_s = {POLL_S}\n"
            f"[sorter]\nchutes = {json.dumps(CHUTES)}\n"
        )
        agent = Proc(["edge", "--config", str(config)])
        try:
            await asyncio.to_thread(agent.wait_for, "modbus sorting line on")
            while (await sorting.GetSortPlan(
                sorting_pb2.GetSortPlanRequest(line_id=line_id)
            )).applied_version != version:  # fmt: skip
                await asyncio.sleep(0.1)
            before = await line_events(app, line_id)
            started = time.perf_counter()
            go.write_text("go")
            feeder = asyncio.create_task(
                asyncio.to_thread(sim.wait_for, r"inducted \d+ parcels", args.seconds * 3 + 60)
            )
            updates, chute = 0, "CH01"
            while not feeder.done():
                await asyncio.wait({feeder}, timeout=plan_every)
                if not feeder.done():
                    chute = "CH02" if chute == "CH01" else "CH01"
                    await set_plan(chute)
                    updates += 1
            # Every inducted parcel yields one event (sorted or rejected), plus plan reports.
            offered = total + updates
            deadline = time.perf_counter() + 60
            while await line_events(app, line_id) - before < offered:
                if time.perf_counter() > deadline:
                    break
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
            got = await line_events(app, line_id) - before
        finally:
            rc = agent.terminate()
            decisions = await asyncio.to_thread(stop_line, sim, tmp, "line")
        exceptions = {
            r: app.metrics.sorting.sort_exceptions.labels(SITE, r)._value.get()
            for r in ("stale_plan", "wrong_chute", "no_chute")
        }
        ingest = app.metrics.ingest_duration.labels("event")
        buckets = [(float(s.labels["le"]), s.value) for s in ingest.collect()[0].samples
                   if s.name.endswith("_bucket")]  # fmt: skip
        count = buckets[-1][1]
        p99_le = next((le for le, c in buckets if c >= 0.99 * count), float("inf"))
        for d in devices:
            await d.__aexit__(None, None, None)
        await channel.close()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    print(
        f"line: {total} parcels at {rate:.1f}/s ({PER_HOUR}/h x {args.speedup:g}), "
        f"{updates} plan updates (every {plan_every:.0f} s), agent exit {rc}"
    )
    print(f"events at the hub over {elapsed:.1f} s:")
    print(f"  offered by the line  {offered / elapsed:8.1f} events/s   (baseline)")
    print(f"  applied at the hub   {got / elapsed:8.1f} events/s   ratio {got / offered:.3f}")
    print(f"  hub ingest duration p99 <= {p99_le * 1000:.0f} ms (histogram bucket)")
    print(f"  sort exceptions (items in flight across a plan change): {exceptions}")
    print(f"decision latency, induction -> divert command ({len(decisions)} / {len(bare)}):")
    b50, b99 = pct(bare, 0.5), pct(bare, 0.99)
    print(f"  bare Modbus master   p50 {b50:6.1f} ms   p99 {b99:6.1f} ms   (baseline)")
    p50, p99 = pct(decisions, 0.5), pct(decisions, 0.99)
    print(
        f"  lockerhub agent      p50 {p50:6.1f} ms   p99 {p99:6.1f} ms"
        f"   p99 ratio {p99 / pct(bare, 0.99):.2f}"
    )
    print(f"  (mean agent {statistics.fmean(decisions) * 1000:.1f} ms)" if decisions else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speedup", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    logging.getLogger("mqtt").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        broker = start_test_broker(tmp / "mosquitto")
        try:
            asyncio.run(bench(args, tmp, broker))
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
