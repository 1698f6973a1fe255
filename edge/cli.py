"""``lockerhub edge --config cabinet.toml``: run one cabinet agent until SIGTERM/SIGINT.

The agent does not know which hardware it drives: the caller passes driver factories keyed by
``driver.kind``. On a board, ``python -m edge`` offers the real drivers (:data:`REAL_DRIVERS`); the
``lockerhub`` program adds the simulators through the wiring package (``demo.edge``), the only
place that may import both ``edge`` and ``firmware_sim``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from edge.agent import EdgeAgent
from edge.errors import ConfigError, EdgeError
from edge.settings import EdgeSettings
from lockerhub.driver import DriverError, HardwareDriver

log = logging.getLogger(__name__)

DriverFactory = Callable[[EdgeSettings], AbstractAsyncContextManager[tuple[HardwareDriver, str]]]
"""Opens the hardware for one agent: the driver, and the line printed once the agent is up."""


@asynccontextmanager
async def open_modbus(settings: EdgeSettings) -> AsyncIterator[tuple[HardwareDriver, str]]:
    """Real lock/input boards and an energy meter over Modbus TCP (map: docs/edge.md)."""
    from edge.modbus import ModbusDriver

    d = settings.driver
    if settings.device.kind == "sorting_line":
        from edge.modbus_line import ModbusLineDriver

        line = ModbusLineDriver(
            settings.sorter.chutes,
            host=d.modbus_host,
            port=d.modbus_port,
            line_unit=d.modbus_line_unit,
            meter_unit=d.modbus_meter_unit,
            poll_s=d.modbus_poll_s,
            timeout_s=d.modbus_timeout_s,
        )
        yield line, f"edge: modbus sorting line on {d.modbus_host}:{d.modbus_port}"
        return
    if settings.device.kind != "cabinet":
        raise ConfigError(
            "driver.kind: 'modbus' drives cabinets and sorting lines (device.kind = 'cabinet' "
            "or 'sorting_line')"
        )
    driver = ModbusDriver(
        d.compartment_specs(),
        host=d.modbus_host,
        port=d.modbus_port,
        channels=d.board_size,
        meter_unit=d.modbus_meter_unit,
        poll_s=d.modbus_poll_s,
        timeout_s=d.modbus_timeout_s,
    )
    yield driver, f"edge: modbus driver on {d.modbus_host}:{d.modbus_port}"


REAL_DRIVERS: Mapping[str, DriverFactory] = {"modbus": open_modbus}


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    drivers: Mapping[str, DriverFactory] = REAL_DRIVERS,
) -> None:
    """Add the ``edge`` subcommand, able to run the given driver kinds."""
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
    parser.set_defaults(func=lambda args: run_edge(args, drivers))


def run_edge(args: argparse.Namespace, drivers: Mapping[str, DriverFactory]) -> int:
    """Load settings and run the agent; 2 on a configuration error, 1 on a fatal edge error."""
    try:
        settings = EdgeSettings.load(args.config)
        kind = settings.driver.kind
        if kind not in drivers:
            raise ConfigError(
                f"driver.kind: {kind!r} is not available in this program "
                f"(available: {', '.join(sorted(drivers))}; "
                "the simulators run under `lockerhub edge`)"
            )
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(settings, drivers[kind]))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (EdgeError, DriverError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


async def serve(settings: EdgeSettings, open_driver: DriverFactory) -> None:
    """Run the agent on the driver ``open_driver`` opens, until SIGTERM/SIGINT."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        async with open_driver(settings) as (driver, ready), EdgeAgent(settings, driver) as agent:
            print(ready, flush=True)
            await agent.run()
    except asyncio.CancelledError:
        log.info("edge agent stopped")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(RuntimeError):
                loop.remove_signal_handler(sig)
