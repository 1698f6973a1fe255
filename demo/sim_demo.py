"""``lockerhub sim`` against a running demo: cabinets by id, parcels by id, codes from the notifier.

``lockerhub demo`` writes its cabinets' control addresses, the cabinet of each reserved parcel and
the pickup notices into its work directory (``demo.workdir``); these options read them, so that
``sim deposit --parcel DEMO-1`` and ``sim pickup --parcel DEMO-1`` need nothing copied by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

from demo import workdir as files
from firmware_sim import cli as sim_cli
from firmware_sim.control import ControlClient
from firmware_sim.errors import ControlError

Action = Callable[[argparse.Namespace], int]
_POLL_S = 0.5
_PICKUP_TRIES = 3


def extend(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Give each ``sim`` action on a control port ``--demo-dir`` and ``--cabinet``; deposit and
    pickup by ``--parcel``. Actions without a control port (``modbus``) are left as they are."""
    for name, parser in actions.choices.items():
        if name not in sim_cli.CONTROL_ACTIONS:
            continue
        parser.add_argument(
            "--demo-dir",
            type=Path,
            default=files.DEFAULT_WORKDIR,
            help="work directory of a running `lockerhub demo` (var/demo)",
        )
        parser.add_argument(
            "--cabinet", help="a demo cabinet by id (its control address from controls.json)"
        )
        if name == "pickup":
            parser.add_argument(
                "--parcel", help="pick up this parcel with the code the notifier sent (demo)"
            )
        if name in ("deposit", "pickup"):
            parser.add_argument(
                "--wait", type=float, default=30.0, help="seconds to wait for the demo (30)"
            )
        original = parser.get_default("func")
        if callable(original):
            parser.set_defaults(func=_resolving(name, original))


def _resolving(name: str, original: Action) -> Action:
    def run(args: argparse.Namespace) -> int:
        try:
            if name == "pickup" and args.code is None and not args.parcel:
                raise ControlError("which parcel? pass --code CODE, or --parcel ID (in a demo)")
            if args.control is not None:
                return original(args)
            if name == "deposit" and args.cabinet is None:
                return asyncio.run(_deposit_by_parcel(args))
            if name == "pickup" and args.code is None and args.parcel:
                return asyncio.run(_pickup_by_parcel(args))
            if args.cabinet is None:
                raise ControlError(
                    "which cabinet? pass --cabinet ID (a running demo) or --control HOST:PORT"
                )
            args.control = _control(args.demo_dir, args.cabinet)
            return original(args)
        except (ControlError, files.DemoFileError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return run


def _control(demo_dir: Path, cabinet: str) -> tuple[str, int]:
    text = files.control_of(demo_dir, cabinet)
    try:
        return sim_cli.address(text)
    except argparse.ArgumentTypeError as exc:
        raise ControlError(f"{demo_dir / files.CONTROLS}: {exc}") from exc


def _wait_s(args: argparse.Namespace) -> float:
    if not 0 < args.wait <= 600:
        raise ControlError("--wait must be in (0, 600]")
    return float(args.wait)


async def _deposit_by_parcel(args: argparse.Namespace) -> int:
    """Find the cabinet holding the reservation, then scan until the reservation has arrived."""
    deadline = time.monotonic() + _wait_s(args)
    path = args.demo_dir / files.PARCELS
    demo_dir, parcel = args.demo_dir, args.parcel
    while (cabinet := await asyncio.to_thread(files.cabinet_of, demo_dir, parcel)) is None:
        if time.monotonic() > deadline:
            raise ControlError(f"{path} names no reservation for {args.parcel}: announced?")
        await asyncio.sleep(_POLL_S)
    print(f"{args.parcel} is reserved at {cabinet} (from {path})")
    host, port = _control(args.demo_dir, cabinet)
    async with ControlClient(host, port) as client:
        while True:
            # The reservation reaches the cabinet over MQTT just after the hub commits it.
            result = await client.courier_deposit(args.parcel, timeout_s=2.0)
            if result.opened is not None:
                print(
                    f"deposit of {args.parcel}: compartment {result.opened} of {cabinet} opened, "
                    "parcel in, door closed"
                )
                return 0
            if result.relay_fired or time.monotonic() > deadline:
                why = "refused"
                if result.relay_fired:
                    why = "relay fired but no door opened (jammed?)"
                print(f"deposit of {args.parcel} at {cabinet}: {why}")
                return 1
            await asyncio.sleep(_POLL_S)


async def _pickup_by_parcel(args: argparse.Namespace) -> int:
    """Read the code the notifier sent (the recipient's SMS), then enter it at that cabinet."""
    deadline = time.monotonic() + _wait_s(args)
    path = args.demo_dir / files.NOTIFICATIONS
    while (notice := await asyncio.to_thread(files.notice_for, args.demo_dir, args.parcel)) is None:
        if time.monotonic() > deadline:
            raise ControlError(f"{path} has no pickup code for {args.parcel}: deposited?")
        await asyncio.sleep(_POLL_S)
    cabinet = args.cabinet or notice.get("cabinet", "")
    print(f"pickup code for {args.parcel} read from {path} (the demo's stand-in for the SMS)")
    host, port = _control(args.demo_dir, cabinet)
    async with ControlClient(host, port) as client:
        for attempt in range(_PICKUP_TRIES):
            # The code reaches the cabinet over MQTT about when the notice is written.
            result = await client.recipient_pickup(notice["code"], timeout_s=2.0)
            if result.opened is not None:
                print(
                    f"pickup: compartment {result.opened} of {cabinet} opened, parcel taken, "
                    "door closed"
                )
                return 0
            if attempt + 1 < _PICKUP_TRIES:
                await asyncio.sleep(1.0)
    print(f"pickup of {args.parcel} at {cabinet}: refused (wrong code, locked keypad or no parcel)")
    return 1
