"""``lockerhub sim ...``: the simulator's courier and recipient actions, plus ``sim fleet``.

Against a running demo, the actions find cabinets, parcels and codes in its work directory
(``demo.sim_demo``).

``sim fleet`` runs edge agents on simulated cabinets, so it is wiring (both components) and lives
here; the actions themselves belong to ``firmware_sim.cli``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from demo import sim_demo
from edge.errors import EdgeError
from firmware_sim import cli as sim_cli
from firmware_sim.errors import SimError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``sim`` subcommand: the simulator's actions and ``fleet``."""
    actions = sim_cli.register(subparsers)
    sim_demo.extend(actions)  # before fleet: the fleet has no control port to look up
    _register_fleet(actions)


def _register_fleet(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    help_ = (
        "run N simulated cabinets, each with its own agent, account and MQTT connection, "
        "to load a hub (docs/edge.md, Fleets)"
    )
    p = actions.add_parser("fleet", help=help_, description=help_)
    p.add_argument("--cabinets", type=int, required=True, help="how many cabinets (1-10000)")
    p.add_argument(
        "--broker", type=sim_cli.address, default=("127.0.0.1", 1883), metavar="HOST:PORT"
    )
    p.add_argument("--site", default="fleet-site", help="site id of every cabinet")
    p.add_argument("--prefix", default="fleet", help="device ids are PREFIX-0001, ...")
    p.add_argument("--data", type=Path, default=Path("var/fleet"), help="SQLite directory")
    p.add_argument(
        "--storage",
        choices=("shared", "files"),
        default="shared",
        help="shared: one database and thread for the fleet (default); files: one per cabinet",
    )
    p.add_argument(
        "--connect-concurrency",
        type=int,
        default=16,
        help="cabinets connecting at once (default 16)",
    )
    p.add_argument("--keepalive", type=int, default=60, help="MQTT keepalive (s), jittered +-20%%")
    accounts = p.add_mutually_exclusive_group()
    accounts.add_argument(
        "--credentials",
        type=Path,
        help='JSON file {"<device id>": {"username": ..., "password": ...}} (per-device ACLs)',
    )
    accounts.add_argument(
        "--username", default="", help="one shared account (open test broker without ACLs)"
    )
    p.add_argument(
        "--password-env",
        default="LOCKERHUB_FLEET_PASSWORD",
        help="environment variable holding the shared account's password",
    )
    p.add_argument(
        "--telemetry", type=float, default=60.0, help="telemetry interval (s), jittered +-20%%"
    )
    p.add_argument(
        "--activity", type=float, default=0.0, help="forced open/close pairs per cabinet per s"
    )
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument(
        "--report",
        type=float,
        default=None,
        metavar="SECONDS",
        help="print connections and the outbox backlog (oldest waiting event) this often",
    )
    p.set_defaults(func=_fleet)


def _fleet(args: argparse.Namespace) -> int:
    from demo.fleet import FleetSpec, load_credentials, serve_fleet

    try:
        credentials = None if args.credentials is None else load_credentials(args.credentials)
        spec = FleetSpec(
            cabinets=args.cabinets,
            host=args.broker[0],
            port=args.broker[1],
            site=args.site,
            prefix=args.prefix,
            data_dir=args.data,
            credentials=credentials,
            username=args.username,
            password=os.environ.get(args.password_env, ""),
            telemetry_s=args.telemetry,
            activity_per_s=args.activity,
            storage=args.storage,
            connect_concurrency=args.connect_concurrency,
            keepalive_s=args.keepalive,
        )
        if args.duration is not None and not 0 < args.duration <= 86400 * 30:
            raise SimError("--duration must be in (0, 2592000]")
        if args.report is not None and not 0.5 <= args.report <= 3600:
            raise SimError("--report must be 0.5-3600 seconds")
    except SimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            stats = await serve_fleet(spec, duration_s=args.duration, report_s=args.report)
            print(f"fleet: stopped ({stats.actions} actions)", flush=True)

    try:
        asyncio.run(main())
    except (SimError, EdgeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
