"""``lockerhub edge``: the edge agent with the real drivers and the simulators of ``firmware_sim``.

A board runs ``python -m edge`` (real drivers only); this module lets the ``lockerhub`` program also
run an agent on a simulated cabinet or sorting line, composing the two components in the one
package allowed to.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from edge import __main__ as edge_main
from edge import cli as edge_cli
from edge.settings import EdgeSettings
from lockerhub.driver import HardwareDriver

# The lines printed on stdout once the agent is up (tests and the demo parse them).
SIM_CONTROL_ANNOUNCE = "edge: sim control listening on {host}:{port}"
SORTING_LINE_ANNOUNCE = "edge: simulated sorting line running"


@asynccontextmanager
async def open_simulator(settings: EdgeSettings) -> AsyncIterator[tuple[HardwareDriver, str]]:
    """A simulated sorting line, or a simulated cabinet with its loopback control server."""
    if settings.device.kind == "sorting_line":
        from firmware_sim.sorting_line import SimulatedSortingLine

        s = settings.sorter
        line = SimulatedSortingLine(
            s.chutes,
            destinations=[f"D{i}" for i in range(1, len(s.chutes))],
            induction_rate_per_s=s.sim_induction_rate_per_s,
            no_read_rate=s.sim_no_read_rate,
        )
        async with line:
            yield line, SORTING_LINE_ANNOUNCE
        return
    from firmware_sim.cabinet import SimulatedCabinet
    from firmware_sim.control import ControlServer

    d = settings.driver
    sim = SimulatedCabinet(
        d.compartment_specs(), state_path=d.sim_state_path, slow_relay_s=d.sim_slow_relay_s
    )
    async with ControlServer(sim, host=d.control_host, port=d.control_port) as control:
        host, port = control.address
        yield sim, SIM_CONTROL_ANNOUNCE.format(host=host, port=port)


DRIVERS: Mapping[str, edge_cli.DriverFactory] = {**edge_cli.REAL_DRIVERS, "sim": open_simulator}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``edge`` subcommand with real and simulated drivers."""
    edge_cli.register(subparsers, DRIVERS)


if __name__ == "__main__":  # ``python -m demo.edge --config cabinet.toml``: with the simulators
    sys.exit(edge_main.main(drivers=DRIVERS, prog="python -m demo.edge"))
