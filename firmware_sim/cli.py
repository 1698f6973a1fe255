"""``lockerhub sim ...``: play courier or recipient on a simulated cabinet via its control port."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from edge.errors import EdgeError
from firmware_sim.control import ControlClient
from firmware_sim.errors import ControlError, SimError


def _address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value[:60]!r}")
    return host, int(port)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``sim`` subcommand and its actions."""
    parser = subparsers.add_parser(
        "sim",
        help="act on a simulated cabinet (courier, recipient, intruder)",
        description="Drive a simulated cabinet through the control port its edge agent printed.",
    )
    actions = parser.add_subparsers(dest="sim_action", metavar="ACTION", required=True)

    def action(name: str, help_: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help_, description=help_)
        p.add_argument(
            "--control", type=_address, required=True, metavar="HOST:PORT", help="control address"
        )
        return p

    p = action("deposit", "courier: scan a parcel, put it into the compartment that opens, close")
    p.add_argument("--parcel", required=True, help="parcel id on the label")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for a door")
    p.set_defaults(func=_run(_deposit))
    p = action("pickup", "recipient: enter a code, take the parcel, close the door")
    p.add_argument("--code", required=True, help="pickup code")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for a door")
    p.set_defaults(func=_run(_pickup))
    p = action("state", "show doors, items, relay pulses and the meter")
    p.add_argument("--json", action="store_true", help="print raw JSON")
    p.set_defaults(func=_run(_state))
    p = action("force-open", "pry a compartment door open (raises a forced-open alarm)")
    p.add_argument("--compartment", required=True, help="compartment id, e.g. C01")
    p.set_defaults(func=_run(_force_open))
    _register_fleet(actions)


def _register_fleet(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    help_ = "run N simulated cabinets, each with its own agent and MQTT connection, to load a hub"
    p = actions.add_parser("fleet", help=help_, description=help_)
    p.add_argument("--cabinets", type=int, required=True, help="how many cabinets (1-5000)")
    p.add_argument("--broker", type=_address, default=("127.0.0.1", 1883), metavar="HOST:PORT")
    p.add_argument("--site", default="fleet-site", help="site id of every cabinet")
    p.add_argument("--prefix", default="fleet", help="device ids are PREFIX-0001, ...")
    p.add_argument("--data", type=Path, default=Path("var/fleet"), help="SQLite directory")
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
    p.add_argument("--telemetry", type=float, default=60.0, help="telemetry interval (s)")
    p.add_argument(
        "--activity", type=float, default=0.0, help="forced open/close pairs per cabinet per s"
    )
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(func=_fleet)


def _fleet(args: argparse.Namespace) -> int:
    from firmware_sim.fleet import FleetSpec, load_credentials, serve_fleet

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
        )
        if args.duration is not None and not 0 < args.duration <= 86400 * 30:
            raise SimError("--duration must be in (0, 2592000]")
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
            stats = await serve_fleet(spec, duration_s=args.duration)
            print(f"fleet: stopped ({stats.actions} actions)", flush=True)

    try:
        asyncio.run(main())
    except (SimError, EdgeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _run(
    body: Callable[[ControlClient, argparse.Namespace], Awaitable[int]],
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        async def main() -> int:
            host, port = args.control
            async with ControlClient(host, port) as client:
                return await body(client, args)

        try:
            return asyncio.run(main())
        except ControlError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return run


def _timeout(args: argparse.Namespace) -> float:
    if not 0 < args.timeout <= 60:
        raise ControlError("--timeout must be in (0, 60]")
    return float(args.timeout)


async def _deposit(client: ControlClient, args: argparse.Namespace) -> int:
    result = await client.courier_deposit(args.parcel, timeout_s=_timeout(args))
    if result.opened is None:
        reason = "relay fired but no door opened (jammed?)" if result.relay_fired else "refused"
        print(f"deposit of {args.parcel}: {reason}")
        return 1
    print(f"deposit of {args.parcel}: compartment {result.opened} opened, parcel in, door closed")
    return 0


async def _pickup(client: ControlClient, args: argparse.Namespace) -> int:
    result = await client.recipient_pickup(args.code, timeout_s=_timeout(args))
    if result.opened is None:
        print("pickup: refused (wrong code, locked keypad or no parcel)")
        return 1
    print(f"pickup: compartment {result.opened} opened, parcel taken, door closed")
    return 0


async def _state(client: ControlClient, args: argparse.Namespace) -> int:
    state = await client.state()
    if args.json:
        print(json.dumps(state, indent=2, sort_keys=True))
        return 0
    print(f"energy {state['energy_wh']:.3f} Wh, power {state['power_w']:.1f} W")
    print(f"{'compartment':<12} {'size':<5} {'door':<7} {'item':<6} {'pulses':>6}  faults")
    comps: dict[str, dict[str, Any]] = state["compartments"]
    for cid, c in comps.items():
        print(
            f"{cid:<12} {c['size']:<5} {'open' if c['door_open'] else 'closed':<7} "
            f"{'yes' if c['item'] else 'no':<6} {c['relay_pulses']:>6}  "
            f"{','.join(c['faults']) or '-'}"
        )
    return 0


async def _force_open(client: ControlClient, args: argparse.Namespace) -> int:
    await client.force_open(args.compartment)
    print(f"compartment {args.compartment} forced open")
    return 0
