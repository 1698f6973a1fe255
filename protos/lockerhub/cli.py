"""The `lockerhub` command line: a root parser that loads only the chosen component.

Each component registers its own subcommands (`register(subparsers)` in its module). Only the
module of the subcommand being run is imported, so `lockerhub edge` on a cabinet board never loads
gRPC, numba or OR-Tools (its memory budget is tens of MB). `tests/test_cli.py` checks that this
table and what the modules register agree.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import importlib
import io
import logging
import signal
import sys
from collections.abc import Sequence

# subcommand -> (module whose register() adds it, one-line help for `lockerhub --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "hub": ("hub.cli", "run the hub service (MQTT ingestion, gRPC, metrics)"),
    "hub-token": ("hub.cli", "make an operator API token and its settings entry"),
    "devices": (
        "hub.broker.provision",
        "provision per-device MQTT accounts (dynamic-security file, certificates)",
    ),
    "broker": ("hub.broker.config", "write the broker's mosquitto.conf, accounts and TLS files"),
    "edge": ("demo.edge", "run a cabinet or sorting-line edge agent"),
    "sim": ("demo.sim", "act as courier or recipient on a simulated cabinet; sim fleets"),
    "ops": ("ops.cli", "operator commands against a running hub (gRPC)"),
    "demo": ("demo.platform", "broker, hub and simulated cabinets in one process (`make run`)"),
    "simulate": ("demo.simulate", "a district's day compressed to minutes, with an HTML report"),
    "allocate": ("routing.cli", "allocate parcels to compartments (PROBLEM.json)"),
    "plan-routes": ("routing.cli", "plan vehicle routes (Solomon or E-VRPTW instance)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The root parser; with ``command``, that subcommand's module registers its real parser."""
    parser = argparse.ArgumentParser(
        prog="lockerhub",
        description="IoT control platform for smart parcel lockers and parcel sorting hubs.",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging threshold (default INFO)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    if command in COMMANDS:
        importlib.import_module(COMMANDS[command][0]).register(sub)
    else:
        # Listing only (--help, a typo): names and help, without importing any component.
        for name, (_, help_) in COMMANDS.items():
            sub.add_parser(name, help=help_)
    return parser


def _chosen(argv: Sequence[str]) -> str | None:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--log-level")
    _, rest = pre.parse_known_args(argv)
    return rest[0] if rest and not rest[0].startswith("-") else None


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `lockerhub` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_chosen(argv)).parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # `kill -USR1 <pid>` prints every thread's stack to stderr: how a hung process is diagnosed.
    # (Not when stderr is no file, as under a test's capture: main() also runs in-process.)
    with contextlib.suppress(AttributeError, ValueError, io.UnsupportedOperation):
        faulthandler.register(signal.SIGUSR1, file=sys.stderr.fileno(), all_threads=True)
    if not hasattr(args, "func"):  # a listed-only placeholder cannot run
        build_parser().print_help(sys.stderr)
        sys.exit(2)
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
