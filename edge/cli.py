"""``lockerhub edge --config cabinet.toml``: run one cabinet agent until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from edge.agent import EdgeAgent
from edge.errors import ConfigError, EdgeError
from edge.settings import EdgeSettings

log = logging.getLogger(__name__)

# The line printed on stdout when the sim driver's control server is up (tests parse it).
SIM_CONTROL_ANNOUNCE = "edge: sim control listening on {host}:{port}"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``edge`` subcommand."""
    parser = subparsers.add_parser(
        "edge",
        help="run a cabinet edge agent",
        description="Run the cabinet agent: hardware driver, local SQLite state, MQTT link.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="cabinet TOML file (overridable by LOCKERHUB_EDGE_<SECTION>__<KEY>)",
    )
    parser.set_defaults(func=run_edge)


def run_edge(args: argparse.Namespace) -> int:
    """Load settings and run the agent; 2 on a configuration error, 1 on a fatal edge error."""
    try:
        settings = EdgeSettings.load(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(settings))
    except EdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


async def serve(settings: EdgeSettings) -> None:
    """Run the agent (and, for the sim driver, its control server) until SIGTERM/SIGINT."""
    # Imported here: firmware_sim depends on edge.driver, not the other way round.
    from firmware_sim.cabinet import SimulatedCabinet
    from firmware_sim.control import ControlServer

    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    sim = SimulatedCabinet(settings.driver.compartment_specs())
    try:
        async with (
            EdgeAgent(settings, sim) as agent,
            ControlServer(
                sim, host=settings.driver.control_host, port=settings.driver.control_port
            ) as control,
        ):
            host, port = control.address
            print(SIM_CONTROL_ANNOUNCE.format(host=host, port=port), flush=True)
            await agent.run()
    except asyncio.CancelledError:
        log.info("edge agent stopped")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(RuntimeError):
                loop.remove_signal_handler(sig)
