"""``python -m edge --config cabinet.toml``: the agent alone on real drivers, for cabinet boards."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence

from edge.cli import REAL_DRIVERS, DriverFactory, register


def main(
    argv: Sequence[str] | None = None,
    drivers: Mapping[str, DriverFactory] = REAL_DRIVERS,
    prog: str = "python -m edge",
) -> int:
    """Parse ``edge`` arguments and run the agent; the exit code of ``lockerhub edge``."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    register(parser.add_subparsers(dest="command", required=True), drivers)
    args = parser.parse_args(["edge", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
