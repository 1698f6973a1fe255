"""``lockerhub sim modbus-line``: a simulated sorting line served over Modbus TCP, fed a manifest.

The line inducts the manifest's parcels (JSON lines ``{"parcel_id": ..., "destination": ...}``)
at ``--rate`` per second once ``--go-file`` exists (so a test or an operator starts the belt when
the line's agent has its plan), and on SIGINT/SIGTERM writes what landed in which chute to
``--landed`` (JSON: chute -> parcel ids, ``null`` for a no-read) and, with ``--latencies``, each
decision's latency (induction queued -> divert command received, seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from firmware_sim.errors import SimError
from firmware_sim.modbus_line import DEFAULT_LINE_UNIT, ModbusLineServer
from firmware_sim.modbus_server import DEFAULT_METER_UNIT
from firmware_sim.sorting_line import SimulatedSortingLine

MAX_MANIFEST = 1_000_000


def add_parser(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    help_ = "serve a simulated sorting line over Modbus TCP (docs/edge.md line map)"
    p = actions.add_parser("modbus-line", help=help_, description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", type=int, default=5021, help="TCP port, 0 = any free (default 5021)")
    p.add_argument("--chutes", required=True, help="chute ids in wire order, comma-separated")
    p.add_argument("--manifest", type=Path, help="JSON lines of parcels to induct")
    p.add_argument("--rate", type=float, default=2.0, help="inductions per second (default 2)")
    p.add_argument("--go-file", type=Path, help="start inducting once this file exists")
    p.add_argument("--landed", type=Path, help="write chute contents here on exit")
    p.add_argument(
        "--latencies", type=Path, help="write each decision's latency (s) here on exit (JSON)"
    )
    p.add_argument("--line-unit", type=int, default=DEFAULT_LINE_UNIT, help="controller unit id")
    p.add_argument("--meter-unit", type=int, default=DEFAULT_METER_UNIT, help="meter unit id")
    p.set_defaults(func=run)


def read_manifest(path: Path) -> list[tuple[str, str]]:
    """(parcel id, destination) pairs. Raises SimError on a malformed line."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            out.append((str(item["parcel_id"]), str(item["destination"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise SimError(f"{path}:{n}: not a parcel line ({exc})") from exc
        if len(out) > MAX_MANIFEST:
            raise SimError(f"{path}: more than {MAX_MANIFEST} parcels")
    return out


async def _feed(
    line: SimulatedSortingLine, parcels: list[tuple[str, str]], rate: float, go: Path | None
) -> None:
    # Another process creates the file: polled, there is nothing to wait on.
    while go is not None and not await asyncio.to_thread(go.exists):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    for parcel_id, destination in parcels:
        await line.induct(parcel_id, destination)
        await asyncio.sleep(1 / rate)
    print(f"modbus line: inducted {len(parcels)} parcels", flush=True)


def run(args: argparse.Namespace) -> int:
    async def main() -> None:
        chutes = [c for c in args.chutes.split(",") if c]
        if not 0 < args.rate <= 1000:
            raise SimError("--rate must be in (0, 1000]")
        parcels = read_manifest(args.manifest) if args.manifest else []
        line = SimulatedSortingLine(chutes, confirm_delay_s=0.02, loop_s=0.1)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        server = ModbusLineServer(
            line,
            host=args.host,
            port=args.port,
            line_unit=args.line_unit,
            meter_unit=args.meter_unit,
        )
        async with line, server:
            host, port = server.address
            print(
                f"modbus line on {host}:{port}: controller at unit {args.line_unit}, "
                f"meter at unit {args.meter_unit}, {len(chutes)} chutes",
                flush=True,
            )
            feeder = asyncio.create_task(_feed(line, parcels, args.rate, args.go_file))
            await stop.wait()
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
            if args.landed is not None:
                args.landed.write_text(json.dumps(line.landed))
            if args.latencies is not None:
                args.latencies.write_text(json.dumps(server.decision_latencies_s))

    try:
        asyncio.run(main())
    except (SimError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
