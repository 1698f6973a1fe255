"""Fault injection and persisted hardware state of the simulated cabinet; the new control ops."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from firmware_sim.cabinet import Fault, SimulatedCabinet
from firmware_sim.control import ControlClient, ControlServer
from firmware_sim.errors import ControlError
from lockerhub.driver import CompartmentSpec, DriverError, SizeClass


def _specs() -> list[CompartmentSpec]:
    return [
        CompartmentSpec(
            compartment_id=f"C0{i}",
            size=SizeClass.M,
            width_mm=380,
            height_mm=190,
            depth_mm=640,
            max_weight_g=25_000,
            chilled=i == 2,
            board=i // 2,
        )
        for i in (1, 2)
    ]


async def test_sensor_faults_dead_board_and_meter_reset() -> None:
    sim = SimulatedCabinet(_specs(), monotonic=lambda: 3600.0)
    await sim.inject_fault(Fault.BROKEN_ITEM, "C01")
    with pytest.raises(DriverError, match="item sensor"):
        await sim.read_item("C01")
    await sim.inject_fault(Fault.STUCK_ITEM, "C02")
    await sim.put_item("C02")
    assert await sim.read_item("C02") is False  # stuck at its old reading
    await sim.relays_off(0)
    await sim.inject_fault(Fault.DEAD_BOARD, "C02")
    with pytest.raises(DriverError, match="board 1"):
        await sim.relays_off(1)
    assert await sim.read_temperature("C01") is None
    assert await sim.read_temperature("C02") == 4.0
    with pytest.raises(DriverError, match="no temperature probe"):
        await sim.set_temperature("C01", 3)
    await sim.fire_relay("C01")
    assert (await sim.read_meter()).energy_wh > 0
    await sim.meter_reset()
    assert (await sim.read_meter()).energy_wh == 0


async def test_slow_relay_pulse_is_on_disk_before_the_door_moves(tmp_path: Path) -> None:
    path = tmp_path / "hw.json"
    sim = SimulatedCabinet(_specs(), state_path=path, slow_relay_s=30)
    await sim.inject_fault(Fault.SLOW_RELAY, "C01")
    task = asyncio.create_task(sim.fire_relay("C01"))
    async with asyncio.timeout(5):
        while not path.exists():
            await asyncio.sleep(0.01)
    task.cancel()  # the process dies during the pulse
    with pytest.raises(asyncio.CancelledError):
        await task
    saved = json.loads(path.read_text())
    assert saved["compartments"]["C01"] == {"relay_pulses": 1, "door_open": False, "item": False}
    again = SimulatedCabinet(_specs(), state_path=path)
    assert again.relay_pulses("C01") == 1
    path.write_text("{broken")
    assert SimulatedCabinet(_specs(), state_path=path).relay_pulses() == 0


async def test_new_control_ops_and_their_bad_input() -> None:
    sim = SimulatedCabinet(_specs())
    async with ControlServer(sim) as server, ControlClient(*server.address) as client:
        await client.set_temperature("C02", 8.5)
        await client.meter_reset()
        await client.request("sensor_glitch", compartment_id="C01", present=True)
        state = await client.state()
        assert state["compartments"]["C02"]["temperature_c"] == 8.5
        assert state["compartments"]["C01"]["item_reading"] is True
        for bad in ("x", None, True, 1e9, float("nan")):
            with pytest.raises(ControlError, match="celsius"):
                await client.request("set_temperature", compartment_id="C02", celsius=bad)
        with pytest.raises(ControlError, match="present"):
            await client.request("sensor_glitch", compartment_id="C01", present="yes")
        with pytest.raises(ControlError, match="unknown fault"):
            await client.inject_fault("melt", "C01")
