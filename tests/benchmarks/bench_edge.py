"""Edge agent: resident memory and idle CPU, outbox replay rate, cabinets per fleet process.

Run: ``python tests/benchmarks/bench_edge.py`` (defaults sized for a few minutes; the issue's full
figure is ``--events 100000``). Uses a plain local mosquitto without auth on a free port (an open
test broker: the fleet's shared-account mode). Each figure is printed next to a baseline measured
in the same run, as a ratio:

* agent RSS / idle CPU (1 s telemetry, ``lockerhub edge`` process) vs a bare Python process that
  imports the same libraries and idles, and vs the targets (60 MB, 1 % of a core);
* outbox replay rate (events buffered while the broker was unreachable, drained after connect) vs
  the broker's own QoS 1 throughput with a bare aiomqtt client publishing one message at a time
  (the same one-in-flight pattern);
* simulated cabinets one fleet process sustains with 1 s telemetry (>= 90 % of the expected
  samples arrive and every cabinet is connected) at increasing sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiomqtt  # noqa: E402

from demo.fleet import Fleet, FleetSpec  # noqa: E402
from edge.agent import EdgeAgent  # noqa: E402
from edge.settings import EdgeSettings  # noqa: E402
from edge.store import Store  # noqa: E402
from firmware_sim.cabinet import SimulatedCabinet  # noqa: E402
from lockerhub.v1 import device_pb2  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OpenBroker:
    """mosquitto on a free loopback port, anonymous, no persistence (benchmark only)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        conf = workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            "max_queued_messages 0\nmax_inflight_messages 0\n"
        )
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _measure(proc: subprocess.Popen[bytes], settle_s: float, idle_s: float) -> tuple[float, float]:
    time.sleep(settle_s)
    c0, t0 = _cpu_s(proc.pid), time.monotonic()
    time.sleep(idle_s)
    cpu = (_cpu_s(proc.pid) - c0) / (time.monotonic() - t0)
    return _rss_mb(proc.pid), cpu * 100


def bench_idle(port: int, workdir: Path, idle_s: float) -> None:
    cfg = workdir / "idle.toml"
    cfg.write_text(
        f"""
[device]
id = "bench-idle"
site = "bench"
[broker]
port = {port}
[storage]
path = "{workdir / "idle.sqlite3"}"
[telemetry]
interval_s = 1
[driver]
kind = "sim"
"""
    )
    exe = Path(sys.executable).parent / "lockerhub"
    bare = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import aiomqtt, sqlite3, google.protobuf, time; time.sleep(3600)",
        ]
    )
    try:
        bare_rss, bare_cpu = _measure(bare, 1.0, 0.5)
    finally:
        bare.terminate()
        bare.wait(20)
    # `python -m edge` is what a board runs (real drivers); `python -m demo.edge` is the same
    # agent with the simulators, measured on the simulated cabinet; `lockerhub edge` adds the CLI.
    for label, argv in (
        ("python -m demo.edge", [sys.executable, "-m", "demo.edge", "--config", str(cfg)]),
        ("lockerhub edge", [str(exe), "edge", "--config", str(cfg)]),
    ):
        agent = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
        )
        try:
            rss, cpu = _measure(agent, 3.0, idle_s)
        finally:
            agent.terminate()
            agent.wait(20)
        print(
            f"{label:<15} RSS {rss:6.1f} MB  bare python+libs {bare_rss:5.1f} MB  "
            f"ratio {rss / bare_rss:4.2f}  target 60 MB: {'OK' if rss < 60 else 'OVER'}"
        )
        print(
            f"{label:<15} idle CPU {cpu:5.2f} % of a core (1 s telemetry, {idle_s:g} s)  "
            f"bare {bare_cpu:4.2f} %  target 1 %: {'OK' if cpu < 1 else 'OVER'}"
        )


async def _bare_rate(port: int, n: int) -> float:
    payload = device_pb2.DeviceEvent(
        door_changed=device_pb2.DoorChanged(compartment_id="C01", open=True),
        event_id="0" * 36,
        seq=1,
        ts_ms=1,
    ).SerializeToString()
    async with aiomqtt.Client("127.0.0.1", port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        t0 = time.perf_counter()
        for _ in range(n):
            await client.publish("lockerhub/v1/bench/bare/event", payload, qos=1)
        return n / (time.perf_counter() - t0)


async def _replay_rate(port: int, workdir: Path, n: int) -> float:
    settings = EdgeSettings.from_mapping(
        {
            "device": {"id": "bench-replay", "site": "bench"},
            "broker": {"port": port},
            "storage": {
                "path": str(workdir / "replay.sqlite3"),
                "outbox_max": max(n * 2, 100),
                "replay_rate_per_s": 1_000_000,
            },
            "telemetry": {"interval_s": 3600},
        }
    )
    async with Store(settings.storage.path, outbox_max=max(n * 2, 100)) as store:
        for start in range(0, n, 1000):
            events = [
                device_pb2.DeviceEvent(
                    door_changed=device_pb2.DoorChanged(compartment_id="C01", open=True)
                )
                for _ in range(min(1000, n - start))
            ]
            await store.commit(now_ms=int(time.time() * 1000), events=events)
    sim = SimulatedCabinet(settings.driver.compartment_specs())
    async with EdgeAgent(settings, sim) as agent:
        assert agent.outbox_depth >= n
        t0 = time.perf_counter()
        task = asyncio.create_task(agent.run())
        while agent.outbox_depth > 0:
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t0
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return n / elapsed


async def _fleet_sustains(port: int, workdir: Path, n: int, run_s: float) -> tuple[bool, float]:
    spec = FleetSpec(
        cabinets=n,
        port=port,
        prefix=f"bf{n}",
        site="bench",
        data_dir=workdir / f"fleet{n}",
        telemetry_s=1.0,
    )
    received = 0
    async with aiomqtt.Client("127.0.0.1", port) as sub:
        await sub.subscribe("lockerhub/v1/bench/+/telemetry")

        async def count() -> None:
            nonlocal received
            async for msg in sub.messages:
                if str(msg.topic).split("/")[3].startswith(spec.prefix + "-"):
                    received += 1

        counter = asyncio.create_task(count())
        async with Fleet(spec) as fleet:
            run = asyncio.create_task(fleet.run())
            t0 = time.monotonic()
            while fleet.connected() < n and time.monotonic() - t0 < 60:
                await asyncio.sleep(0.2)
            received = 0
            t1 = time.monotonic()
            await asyncio.sleep(run_s)
            share = received / (n * (time.monotonic() - t1))
            connected = fleet.connected()
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run
        counter.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await counter
    return connected == n and share >= 0.9, share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="buffered events to replay")
    parser.add_argument("--idle", type=float, default=15.0, help="idle CPU window (s)")
    parser.add_argument(
        "--fleet", default="50,100,200,400", help="fleet sizes to try, comma-separated"
    )
    parser.add_argument("--fleet-run", type=float, default=8.0, help="seconds per fleet size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        broker = OpenBroker(workdir)
        try:
            bench_idle(broker.port, workdir, args.idle)
            bare = asyncio.run(_bare_rate(broker.port, args.events))
            replay = asyncio.run(_replay_rate(broker.port, workdir, args.events))
            print(
                f"outbox replay        {replay:8.0f} ev/s  bare aiomqtt QoS 1 {bare:8.0f} msg/s  "
                f"ratio {replay / bare:5.2f}   ({args.events} events)"
            )
            best = 0
            for n in (int(x) for x in args.fleet.split(",")):
                ok, share = asyncio.run(_fleet_sustains(broker.port, workdir, n, args.fleet_run))
                print(
                    f"fleet {n:5d} cabinets  telemetry delivered {share * 100:5.1f} %  "
                    f"{'sustained' if ok else 'NOT sustained'}"
                )
                if not ok:
                    break
                best = n
            print(
                f"fleet: one process sustains >= {best} cabinets at 1 s telemetry "
                f"(ratio to the largest size tried: {best / max(1, n):.2f})"
            )
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
