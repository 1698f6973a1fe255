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
SORTING_LINE_ANNOUNCE = "edge: simulated sorting line running"


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


async def _serve_cabinet(settings: EdgeSettings) -> None:
    # Imported here: firmware_sim depends on edge.driver, not the other way round.
    from firmware_sim.cabinet import SimulatedCabinet
    from firmware_sim.control import ControlServer

    d = settings.driver
    sim = SimulatedCabinet(
        d.compartment_specs(), state_path=d.sim_state_path, slow_relay_s=d.sim_slow_relay_s
    )
    async with (
        EdgeAgent(settings, sim) as agent,
        ControlServer(sim, host=d.control_host, port=d.control_port) as control,
    ):
        host, port = control.address
        print(SIM_CONTROL_ANNOUNCE.format(host=host, port=port), flush=True)
        await agent.run()


async def _serve_modbus(settings: EdgeSettings) -> None:
    from edge.modbus import ModbusDriver

    d = settings.driver
    driver = ModbusDriver(
        d.compartment_specs(),
        host=d.modbus_host,
        port=d.modbus_port,
        channels=d.board_size,
        meter_unit=d.modbus_meter_unit,
        poll_s=d.modbus_poll_s,
        timeout_s=d.modbus_timeout_s,
    )
    async with EdgeAgent(settings, driver) as agent:
        print(f"edge: modbus driver on {d.modbus_host}:{d.modbus_port}", flush=True)
        await agent.run()


async def _serve_line(settings: EdgeSettings) -> None:
    from firmware_sim.sorting_line import SimulatedSortingLine

    s = settings.sorter
    line = SimulatedSortingLine(
        s.chutes,
        destinations=[f"D{i}" for i in range(1, len(s.chutes))],
        induction_rate_per_s=s.sim_induction_rate_per_s,
        no_read_rate=s.sim_no_read_rate,
    )
    async with line, EdgeAgent(settings, line) as agent:
        print(SORTING_LINE_ANNOUNCE, flush=True)
        await agent.run()


async def serve(settings: EdgeSettings) -> None:
    """Run the agent (and, for the sim driver, its control server) until SIGTERM/SIGINT."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        if settings.device.kind == "sorting_line":
            await _serve_line(settings)
        elif settings.driver.kind == "modbus":
            await _serve_modbus(settings)
        else:
            await _serve_cabinet(settings)
    except asyncio.CancelledError:
        log.info("edge agent stopped")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(RuntimeError):
                loop.remove_signal_handler(sig)
