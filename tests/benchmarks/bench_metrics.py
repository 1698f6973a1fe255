"""/metrics scrape time and size with 10000 cabinets registered, against a plain-gauge baseline.

Run: ``python tests/benchmarks/bench_metrics.py`` (10000 cabinets over 200 sites, 20 sorting lines,
50 charge points). ``--cabinets/--repeat`` scale it. Each cabinet has reported telemetry (energy,
power, doors, chilled temperatures), so every per-cabinet series exists. Two figures:

- render: ``generate_latest`` on the hub's registry (collectors serving cached snapshots);
- scrape: a real HTTP GET of /metrics from the hub's MetricsServer on loopback.

The baseline is prometheus_client's ``generate_latest`` on a registry holding the same number of
series as plain labelled gauges, measured in the same run; figures are printed as ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from prometheus_client import CollectorRegistry, Gauge, generate_latest  # noqa: E402

from hub.metrics.catalogue import DeviceInfo, HubMetrics, Snapshot  # noqa: E402
from hub.metrics.server import MetricsServer  # noqa: E402
from hub.ocpp.state import ChargingCollector, PileState  # noqa: E402
from lockerhub.v1 import device_pb2  # noqa: E402

SIZES = ("S", "M", "L")
STATES = ("free", "reserved", "occupied", "disabled", "fault")


def build_hub(cabinets: int, sites: int, lines: int, piles: int) -> HubMetrics:
    metrics = HubMetrics(CollectorRegistry())
    devices = {
        f"CAB-{i:05d}": DeviceInfo(site=f"site-{i % sites:03d}", kind="cabinet", online=i % 50 != 0)
        for i in range(cabinets)
    }
    devices |= {
        f"LINE-{i:02d}": DeviceInfo(site="hub-0", kind="sorting_line", online=True)
        for i in range(lines)
    }
    compartments = {
        (f"site-{s:03d}", size, state): 10
        for s in range(sites)
        for size in SIZES
        for state in STATES
    }
    metrics.snapshot.update(
        Snapshot(
            compartments=compartments,
            devices_online={"cabinet": cabinets, "sorting_line": lines},
            devices=devices,
        )
    )
    for device, info in devices.items():
        sample = device_pb2.Telemetry(ts_ms=1, energy_wh=1234.5, power_w=55.0)
        if info.kind == "cabinet":
            sample.compartments.add(compartment_id="A01", door_open=True)
            sample.compartments.add(compartment_id="C01", has_temperature=True, temperature_c=4.2)
        else:
            sample.sorter.inducted, sample.sorter.sorted = 1000, 990
            sample.chutes.add(chute_id="c1", full=False)
        metrics.telemetry.observe(info.site, device, sample)
    for s in range(sites):
        metrics.add_site(f"site-{s:03d}", ("announced", "deposited", "picked_up"))
    pile_states = []
    for i in range(piles):
        pile = PileState(pile_id=f"pile-{i:02d}", site=f"site-{i % sites:03d}", online=True)
        for c in (1, 2):
            pile.connector(c).set_status("Charging" if c == 1 else "Available", time.monotonic())
        pile_states.append(pile)
    metrics.registry.register(ChargingCollector(lambda: pile_states))
    return metrics


def count_series(text: bytes) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))


def build_baseline(series: int) -> CollectorRegistry:
    registry = CollectorRegistry()
    gauge = Gauge("baseline_value", "Plain gauges.", ["site", "cabinet"], registry=registry)
    for i in range(series):
        gauge.labels(f"site-{i % 200:03d}", f"CAB-{i:06d}").set(i)
    return registry


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds per call."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def http_scrape(metrics: HubMetrics, repeat: int) -> tuple[float, int]:
    async with MetricsServer(metrics.registry, "127.0.0.1", 0) as server:
        times, size = [], 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            body = await reader.read()
            times.append(time.perf_counter() - t0)
            writer.close()
            await writer.wait_closed()
            size = len(body)
        return statistics.median(times), size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cabinets", type=int, default=10_000)
    ap.add_argument("--sites", type=int, default=200)
    ap.add_argument("--lines", type=int, default=20)
    ap.add_argument("--piles", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()

    metrics = build_hub(args.cabinets, args.sites, args.lines, args.piles)
    text = generate_latest(metrics.registry)
    series = count_series(text)
    baseline = build_baseline(series)
    base_text = generate_latest(baseline)

    hub_s = timed(lambda: generate_latest(metrics.registry), args.repeat)
    base_s = timed(lambda: generate_latest(baseline), args.repeat)
    http_s, http_bytes = asyncio.run(http_scrape(metrics, args.repeat))

    print(f"cabinets={args.cabinets} sites={args.sites} lines={args.lines} piles={args.piles}")
    print(f"series exported: {series} ({series / args.cabinets:.1f} per cabinet)")
    print(
        f"render  hub: {hub_s * 1000:8.1f} ms  {len(text) / 1e6:6.2f} MB | "
        f"baseline plain gauges: {base_s * 1000:8.1f} ms  {len(base_text) / 1e6:6.2f} MB | "
        f"ratio time {hub_s / base_s:.2f}x  size {len(text) / len(base_text):.2f}x"
    )
    print(
        f"scrape  GET /metrics over loopback: {http_s * 1000:8.1f} ms  {http_bytes / 1e6:6.2f} MB"
        f" | ratio to baseline render {http_s / base_s:.2f}x"
    )


if __name__ == "__main__":
    main()
