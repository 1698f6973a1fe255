"""``lockerhub simulate``: a district's day compressed to minutes, and an HTML report of it.

Runs the real broker, hub and edge agents (``demo.district``) with simulated people
(``demo.district_people``), then writes ``report.html`` (``demo.district_report``): parcels by
state over the day, occupancy per site, dwell times, energy per delivered parcel, on-time share,
electronic-waybill and reusable-container shares, alarms. ``--compare`` runs the day a second time
with one more cabinet at the busiest site and puts both runs side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import signal
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TextIO

from demo.district import run_day
from demo.district_report import busiest_site, render_report
from demo.district_spec import MIN_DAY_S_PER_PARCEL, DayRecord, DistrictSpec


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` subcommand."""
    p = subparsers.add_parser(
        "simulate",
        help="a district's day compressed to minutes (real hub, broker, agents) and its report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--cabinets", type=int, default=200, help="cabinets in the district (200)")
    p.add_argument("--sites", type=int, default=20, help="sites they stand at (20)")
    p.add_argument(
        "--day-s",
        type=float,
        default=240.0,
        help="real seconds the day lasts (240); a large district's day is made longer, at least "
        f"{MIN_DAY_S_PER_PARCEL:g} s per parcel (the report says so)",
    )
    p.add_argument(
        "--fixed-day",
        action="store_true",
        help="keep --day-s whatever the size (the people may then fall behind the clock)",
    )
    p.add_argument(
        "--parcels-per-cabinet", type=float, default=4.0, help="parcels announced per cabinet (4)"
    )
    p.add_argument("--seed", type=int, default=17, help="random seed of the day's plan (17)")
    p.add_argument("--no-faults", action="store_true", help="no jam, no cabinet offline")
    p.add_argument(
        "--compare",
        action="store_true",
        help="run the day again with one more cabinet at the busiest site; compare both",
    )
    p.add_argument(
        "--broker",
        choices=("auto", "mosquitto", "embedded"),
        default="auto",
        help="mosquitto when installed (auto), or the embedded pure-Python broker",
    )
    p.add_argument(
        "--workdir", type=Path, default=Path("var/simulate"), help="state and report (var/simulate)"
    )
    p.set_defaults(func=_run)


class ProgressBar:
    """One line redrawn in place on a terminal; a line per tenth otherwise (logs, CI)."""

    def __init__(self, label: str, stream: TextIO = sys.stderr) -> None:
        self.label = label
        self.stream = stream
        self.tty = stream.isatty()
        self._last_tenth = -1

    def __call__(self, fraction: float, text: str) -> None:
        fraction = min(1.0, max(0.0, fraction))
        if self.tty:
            width = max(10, min(40, shutil.get_terminal_size().columns - 40))
            done = round(width * fraction)
            bar = "#" * done + "-" * (width - done)
            self.stream.write(f"\r{self.label} [{bar}] {fraction:4.0%} {text:<24}")
            if fraction >= 1.0:
                self.stream.write("\n")
        else:
            tenth = int(fraction * 10)
            if tenth == self._last_tenth:
                return
            self._last_tenth = tenth
            self.stream.write(f"{self.label} {fraction:4.0%} {text}\n")
        self.stream.flush()


def _run(args: argparse.Namespace) -> int:
    try:
        spec = DistrictSpec(
            cabinets=args.cabinets,
            sites=args.sites,
            day_s=args.day_s,
            parcels_per_cabinet=args.parcels_per_cabinet,
            seed=args.seed,
            faults=not args.no_faults,
            broker=args.broker,
            pace=not args.fixed_day,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    workdir: Path = args.workdir.resolve()
    if workdir.exists():
        shutil.rmtree(workdir / "runs", ignore_errors=True)
    try:
        report = asyncio.run(_main(spec, workdir, compare=args.compare))
    except KeyboardInterrupt:
        return 130
    if report is None:
        print("simulate: interrupted", file=sys.stderr)
        return 130
    print(f"report: {report}")
    print(f"log: {workdir / 'simulate.log'}")
    return 0


async def _main(spec: DistrictSpec, workdir: Path, *, compare: bool) -> Path | None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    logging.getLogger().handlers[:] = [_file_handler(workdir)]
    try:
        runs = [await _one(spec, workdir / "runs" / "base", "day")]
        if compare:
            site = busiest_site(runs[0])
            what_if = replace(spec, extra_cabinet_at=site)
            runs.append(await _one(what_if, workdir / "runs" / "what-if", f"+1 at {site}"))
    except asyncio.CancelledError:
        return None
    path = workdir / "report.html"
    html = render_report(runs)
    await asyncio.to_thread(path.write_text, html, "utf-8")
    return path


def _file_handler(workdir: Path) -> logging.Handler:
    workdir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(workdir / "simulate.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler


async def _one(spec: DistrictSpec, workdir: Path, label: str) -> DayRecord:
    started = time.monotonic()
    record = await run_day(spec, workdir, ProgressBar(f"{label:<16}"))
    text = json.dumps(asdict(record), indent=None)
    await asyncio.to_thread((workdir / "day.json").write_text, text)
    delivered = sum(1 for p in record.parcels if p["state"] == "picked_up")
    if asked := record.spec.get("asked_day_s"):
        print(
            f"{label}: the day was lengthened from {asked:.0f} s to {record.spec['day_s']:.0f} s "
            f"({MIN_DAY_S_PER_PARCEL:g} s per parcel at least; --fixed-day keeps it)",
            flush=True,
        )
    print(
        f"{label}: {len(record.parcels)} parcels placed, {len(record.refused)} refused, "
        f"{delivered} picked up, {len(record.alarms)} alarm events "
        f"({time.monotonic() - started:.0f} s)",
        flush=True,
    )
    return record
