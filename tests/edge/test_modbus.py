"""The Modbus driver against firmware_sim serving Modbus TCP (pymodbus server on a free port)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from edge.errors import DriverError
from edge.modbus import ModbusDriver
from edge.settings import CompartmentGroup, DriverSettings
from firmware_sim.cabinet import Fault, SimulatedCabinet
from firmware_sim.modbus_server import ModbusCabinetServer, free_port
from lockerhub.driver import DoorChanged, ItemChanged
from lockerhub.topics import Kind
from lockerhub.v1 import common_pb2, device_pb2
from tests.edge.conftest import FakeHub, edge_settings, running
from tests.support.broker import BrokerHandle

C = common_pb2
LAYOUT = DriverSettings(
    compartments=(
        CompartmentGroup(size="S", count=3),
        CompartmentGroup(size="M", count=1, chilled=True),
    ),
    board_size=2,
)


def _driver(server: ModbusCabinetServer) -> ModbusDriver:
    host, port = server.address
    return ModbusDriver(LAYOUT.compartment_specs(), host=host, port=port, channels=2, poll_s=0.02)


async def test_register_map_round_trip() -> None:
    sim = SimulatedCabinet(LAYOUT.compartment_specs())
    async with ModbusCabinetServer(sim, channels=2) as server, _driver(server) as driver:
        await driver.relays_off(0)
        await driver.relays_off(1)
        await driver.fire_relay("C02")
        assert sim.relay_pulses("C02") == 1
        assert await driver.read_door("C02") is True
        assert await driver.read_door("C01") is False
        await sim.put_item("C04")
        assert await driver.read_item("C04") is True
        assert await driver.read_temperature("C04") == 4.0
        await sim.set_temperature("C04", -3.5)
        assert await driver.read_temperature("C04") == -3.5
        assert await driver.read_temperature("C01") is None
        meter = await driver.read_meter()
        assert meter.power_w == 18.0
        # Polled sensor changes become input events (a change shorter than the poll is missed).
        events = driver.inputs()

        async def next_door() -> object:
            async with asyncio.timeout(10):
                while not isinstance(event := await anext(events), DoorChanged):
                    seen.append(event)
                return event

        seen: list[object] = []
        assert await next_door() == DoorChanged("C02", True)
        await sim.close_door("C02")
        assert await next_door() == DoorChanged("C02", False)
        assert ItemChanged("C04", True) in seen
        await sim.inject_fault(Fault.DEAD_BOARD, "C03")
        with pytest.raises(DriverError, match="write_coils"):
            await driver.relays_off(1)
        with pytest.raises(DriverError, match="no compartment"):
            await driver.fire_relay("C99")


async def test_unreachable_gateway_is_a_driver_error() -> None:
    driver = ModbusDriver(
        LAYOUT.compartment_specs(), host="127.0.0.1", port=free_port(), timeout_s=0.2
    )
    with pytest.raises(DriverError, match="modbus"):
        async with driver:
            pass


def test_layout_must_fit_the_boards() -> None:
    with pytest.raises(DriverError, match="more than 1"):
        ModbusDriver(LAYOUT.compartment_specs(), host="h", channels=1)


async def test_agent_over_modbus(tmp_path: Path, mosquitto: BrokerHandle, device_id: str) -> None:
    settings = edge_settings(
        tmp_path,
        mosquitto,
        device_id,
        {
            "driver": {
                "kind": "modbus",
                "board_size": 2,
                "compartments": [
                    {"size": "S", "count": 3},
                    {"size": "M", "count": 1, "chilled": True},
                ],
            },
            "telemetry": {"interval_s": 0.3},
            "door": {"open_confirm_ms": 1000},
        },
    )
    sim = SimulatedCabinet(settings.driver.compartment_specs())
    await sim.inject_fault(Fault.DEAD_BOARD, "C01")  # board 0 (C01, C02) is dead
    async with (
        ModbusCabinetServer(sim, channels=2) as server,
        FakeHub(mosquitto, device_id) as hub,
        running(EdgeAgent(settings, _driver(server))) as agent,
    ):
        (alarm,) = await hub.wait_event("alarm")
        assert "board 0" in alarm.alarm.detail
        assert agent.compartment("C01").state.value == "fault"
        res = await hub.call(
            hub.command(open_compartment=device_pb2.OpenCompartment(compartment_id="C03"))
        )
        assert res.outcome == C.COMMAND_OUTCOME_OPENED
        assert sim.relay_pulses("C03") == 1
        await sim.close_door("C03")
        closed = await hub.wait(
            lambda: [e for e in hub.events("door_changed") if not e.door_changed.open]
        )
        assert closed[0].door_changed.commanded
        sample = await hub.wait(
            lambda: next((t for t in hub.of(Kind.TELEMETRY) if t.power_w == 18.0), None)
        )
        temps = {
            c.compartment_id: c.temperature_c for c in sample.compartments if c.has_temperature
        }
        assert temps == {"C04": 4.0}
