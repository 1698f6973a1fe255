"""``python -m edge --config cabinet.toml``: the agent alone, for boards without the hub."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from edge.cli import register


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``edge`` arguments and run the agent; the exit code of ``lockerhub edge``."""
    parser = argparse.ArgumentParser(prog="python -m edge")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    register(parser.add_subparsers(dest="command", required=True))
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
