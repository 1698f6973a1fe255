"""``lockerhub sim ...``: play courier or recipient on a simulated cabinet via its control port,
or serve a simulated cabinet over Modbus TCP (``sim modbus``) for a third-party master."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from firmware_sim import line_run
from firmware_sim.cabinet import SimulatedCabinet
from firmware_sim.control import ControlClient
from firmware_sim.errors import ControlError, SimError
from firmware_sim.modbus_server import CHANNELS, DEFAULT_METER_UNIT, ModbusCabinetServer
from lockerhub.driver import CompartmentSpec, SizeClass


def address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value[:60]!r}")
    return host, int(port)


# The actions that drive a cabinet through its control port (``--control HOST:PORT``).
CONTROL_ACTIONS = ("deposit", "pickup", "state", "force-open")


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add the ``sim`` subcommand and its actions; returns the actions, for the wiring to extend."""
    parser = subparsers.add_parser(
        "sim",
        help="act on a simulated cabinet (courier, recipient, intruder)",
        description="Drive a simulated cabinet through the control port its edge agent printed.",
    )
    actions = parser.add_subparsers(dest="sim_action", metavar="ACTION", required=True)

    def action(name: str, help_: str) -> argparse.ArgumentParser:
        if name not in CONTROL_ACTIONS:
            raise ValueError(f"{name!r} takes --control: list it in CONTROL_ACTIONS")
        p = actions.add_parser(name, help=help_, description=help_)
        p.add_argument("--control", type=address, metavar="HOST:PORT", help="control address")
        return p

    p = action("deposit", "courier: scan a parcel, put it into the compartment that opens, close")
    p.add_argument("--parcel", required=True, help="parcel id on the label")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for a door")
    p.set_defaults(func=_run(_deposit))
    p = action("pickup", "recipient: enter a code, take the parcel, close the door")
    p.add_argument("--code", help="pickup code")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for a door")
    p.set_defaults(func=_run(_pickup))
    p = action("state", "show doors, items, relay pulses and the meter")
    p.add_argument("--json", action="store_true", help="print raw JSON")
    p.set_defaults(func=_run(_state))
    p = action("force-open", "pry a compartment door open (raises a forced-open alarm)")
    p.add_argument("--compartment", required=True, help="compartment id, e.g. C01")
    p.set_defaults(func=_run(_force_open))
    help_ = "serve a simulated cabinet as Modbus TCP lock boards and a meter (docs/edge.md map)"
    p = actions.add_parser("modbus", help=help_, description=help_)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", type=int, default=5020, help="TCP port, 0 = any free (default 5020)")
    p.add_argument("--compartments", type=int, default=8, help="compartments C01.. (1-1000)")
    p.add_argument(
        "--board-size", type=int, default=CHANNELS, help=f"channels per board (1-{CHANNELS})"
    )
    p.add_argument("--meter-unit", type=int, default=DEFAULT_METER_UNIT, help="the meter's unit id")
    p.set_defaults(func=_modbus)
    line_run.add_parser(actions)
    return actions


def modbus_layout(compartments: int, board_size: int) -> list[CompartmentSpec]:
    """``compartments`` small compartments, ``board_size`` to a lock board (board 0 first)."""
    if not 1 <= compartments <= 1000 or not 1 <= board_size <= CHANNELS:
        raise SimError(f"--compartments must be 1-1000 and --board-size 1-{CHANNELS}")
    return [
        CompartmentSpec(
            compartment_id=f"C{i + 1:02d}",
            size=SizeClass.S,
            width_mm=380,
            height_mm=80,
            depth_mm=640,
            max_weight_g=25_000,
            board=i // board_size,
        )
        for i in range(compartments)
    ]


def _modbus(args: argparse.Namespace) -> int:
    async def main() -> None:
        sim = SimulatedCabinet(modbus_layout(args.compartments, args.board_size))
        server = ModbusCabinetServer(
            sim,
            host=args.host,
            port=args.port,
            meter_unit=args.meter_unit,
            channels=args.board_size,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with server:
            host, port = server.address
            boards = -(-args.compartments // args.board_size)
            print(
                f"modbus cabinet on {host}:{port}: lock boards at unit ids 1-{boards} "
                f"({args.board_size} channels each), meter at unit {args.meter_unit}",
                flush=True,
            )
            await stop.wait()

    try:
        asyncio.run(main())
    except SimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _run(
    body: Callable[[ControlClient, argparse.Namespace], Awaitable[int]],
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        async def main() -> int:
            if args.control is None:
                raise ControlError("no control address: pass --control HOST:PORT")
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
    if not args.code:
        raise ControlError("no pickup code: pass --code CODE")
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
