"""A district day at scale: wall time, the hub's CPU share; a fleet's memory and CPU per cabinet.

Run: ``python tests/benchmarks/bench_district.py`` (defaults: districts of 200 cabinets at 20
sites and of 2,000 at 200, a 120 s day asked for each; the 2,000 cabinets' day is lengthened to
800 s, ``DistrictSpec.paced``, unless ``--fixed-day``; about 20 minutes). ``--fleet-sizes 200,1000``
adds fleets against an open broker (``bench_fleet.py`` measures them against the project's broker
and a hub). Each figure is printed next to a baseline measured in the same run:

* the district day (``lockerhub simulate``'s run, with the hub as a process of its own so that
  its CPU is measured apart): wall time of the day and of the whole run; the hub's CPU share of
  one core during the day vs during an idle window before it (every cabinet connected, nobody
  about); the district process (agents, simulated hardware and people) likewise; whether the day
  held: parcels deposited against picked up, still waiting and expired, the alarms raised by kind
  (only the scheduled faults' should be there), and what the simulated people met;
* ``lockerhub sim fleet`` (``demo.fleet``: one agent and one MQTT connection per cabinet, one
  shared database) against an open mosquitto: resident memory and CPU per 1,000 cabinets, from the
  difference between a fleet of N and a fleet of 1 (the baseline: the process itself).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from demo.district import run_day  # noqa: E402
from demo.district_hub import cpu_seconds  # noqa: E402
from demo.district_spec import DistrictSpec  # noqa: E402

LOCKERHUB = Path(sys.executable).with_name("lockerhub")


def share(cpu_s: float, wall_s: float) -> str:
    return f"{100 * cpu_s / wall_s:5.1f} % of a core" if wall_s > 0 else "-"


def district(cabinets: int, day_s: float, workdir: Path, *, pace: bool) -> None:
    spec = DistrictSpec(
        cabinets=cabinets,
        sites=max(1, cabinets // 10),
        day_s=day_s,
        hub_process=True,
        idle_s=min(30.0, day_s / 4),
        pace=pace,
    )

    def progress(fraction: float, text: str) -> None:
        pass

    t0 = time.monotonic()
    record = asyncio.run(run_day(spec, workdir, progress))
    total = time.monotonic() - t0
    m = record.measures
    states = Counter(p["state"] for p in record.parcels)
    raised = Counter(a["kind"] for a in record.alarms if a["status"] == "raised")
    deposited = sum(any(s == "deposited" for s, _ in p["history"]) for p in record.parcels)
    ran = record.spec["day_s"]
    longer = f" (lengthened from {day_s:.0f} s)" if record.spec.get("asked_day_s") else ""
    print(f"district day: {cabinets} cabinets at {spec.sites} sites, {ran:.0f} s day{longer}")
    print(
        f"  parcels: {len(record.parcels)} placed, {len(record.refused)} refused, "
        f"{deposited} deposited -> {states['picked_up']} picked up, "
        f"{states['deposited']} still waiting, {states['expired'] + states['withdrawn']} expired "
        f"({states['withdrawn']} of them withdrawn)"
    )
    print(f"  alarms raised: {dict(raised.most_common())}")
    print(f"  people: {dict(sorted(record.people.items()))}")
    print(f"  wall time: day {m['day_wall_s']:.1f} s, whole run {total:.1f} s (start-up, stop)")
    for who in ("hub", "district"):
        day = share(m[f"day_{who}_cpu_s"], m["day_wall_s"])
        idle = share(m[f"idle_{who}_cpu_s"], m["idle_wall_s"])
        print(f"  {who:<8} CPU: day {day}   idle baseline {idle}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def fleet(n: int, port: int, workdir: Path, window_s: float) -> tuple[float, float]:
    """RSS (MB) once all are connected, and CPU seconds per second over ``window_s``."""
    proc = subprocess.Popen(
        [
            *(str(LOCKERHUB), "sim", "fleet", "--cabinets", str(n)),
            *("--broker", f"127.0.0.1:{port}"),
            *("--data", str(workdir / f"fleet-{n}"), "--prefix", f"f{n}", "--telemetry", "60"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "cabinets connected" in line:
                break
        else:
            raise RuntimeError(f"fleet of {n} never connected")
        time.sleep(2)
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(window_s)
        cpu = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
        return rss_mb(proc.pid), cpu
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fleets(sizes: list[int], workdir: Path, window_s: float) -> None:
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_connections -1\n"
        "max_queued_messages 100000\n"
    )
    broker = subprocess.Popen([mosquitto, "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        base_rss, base_cpu = fleet(1, port, workdir, window_s)
        print(f"fleet baseline (1 cabinet): RSS {base_rss:.0f} MB, CPU {100 * base_cpu:.1f} %")
        for n in sizes:
            rss, cpu = fleet(n, port, workdir, window_s)
            per_k_rss = (rss - base_rss) / (n - 1) * 1000
            per_k_cpu = (cpu - base_cpu) / (n - 1) * 1000
            print(
                f"fleet of {n}: RSS {rss:.0f} MB, CPU {100 * cpu:.1f} % of a core "
                f"(60 s telemetry) -> per 1,000 cabinets: {per_k_rss:.0f} MB, "
                f"{100 * per_k_cpu:.1f} % of a core"
            )
    finally:
        broker.terminate()
        broker.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cabinets", default="200,2000", help="comma-separated district sizes")
    ap.add_argument("--day-s", type=float, default=120.0)
    ap.add_argument(
        "--fixed-day", action="store_true", help="no lengthening of a large district's day"
    )
    ap.add_argument("--fleet-sizes", default="", help="comma-separated (each > 1)")
    ap.add_argument("--fleet-window-s", type=float, default=20.0)
    ap.add_argument("--skip-district", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-district-") as tmp:
        work = Path(tmp)
        if not args.skip_district:
            for n in (int(x) for x in args.cabinets.split(",") if x.strip()):
                district(n, args.day_s, work / f"district-{n}", pace=not args.fixed_day)
        sizes = [int(x) for x in args.fleet_sizes.split(",") if x.strip()]
        if sizes:
            fleets(sizes, work, args.fleet_window_s)
    print(f"(cores on this machine: {os.cpu_count()}; other work shares them)")


if __name__ == "__main__":
    main()
