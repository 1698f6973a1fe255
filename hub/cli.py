"""The `lockerhub` command line: one root parser, each component registering its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# Modules with a `register(subparsers)` function, in the order `--help` lists them.
_COMPONENTS = (
    "hub.app",  # hub
    "edge.cli",  # edge
    "firmware_sim.cli",  # sim
    "hub.ops",  # ops
    "hub.demo",  # demo
)


def build_parser() -> argparse.ArgumentParser:
    """The root parser with every component's subcommands."""
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
    for name in _COMPONENTS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `lockerhub` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
