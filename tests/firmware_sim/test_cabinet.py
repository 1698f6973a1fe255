"""The simulated cabinet as a driver: relays, jam fault, sensors, meter, inputs."""

from __future__ import annotations

import asyncio

import pytest

from firmware_sim.cabinet import SimulatedCabinet
from lockerhub.driver import (
    CompartmentSpec,
    DoorChanged,
    DriverError,
    HardwareDriver,
    ItemChanged,
    SizeClass,
)


def _specs(n: int = 2) -> list[CompartmentSpec]:
    return [
        CompartmentSpec(
            compartment_id=f"C{i}",
            size=SizeClass.S,
            width_mm=380,
            height_mm=80,
            depth_mm=640,
            max_weight_g=25_000,
        )
        for i in range(1, n + 1)
    ]


async def test_relay_opens_door_unless_jammed() -> None:
    clock = [0.0]
    async with SimulatedCabinet(_specs(), monotonic=lambda: clock[0]) as sim:
        assert isinstance(sim, HardwareDriver)
        await sim.fire_relay("C1")
        assert await sim.read_door("C1")
        await sim.inject_fault("jam", "C2")
        await sim.fire_relay("C2")
        assert not await sim.read_door("C2")
        assert (sim.relay_pulses("C1"), sim.relay_pulses("C2"), sim.relay_pulses()) == (1, 1, 2)
        await sim.put_item("C1")
        await sim.close_door("C1")
        inputs = sim.inputs()
        got = [await anext(inputs) for _ in range(3)]
        assert got == [DoorChanged("C1", True), ItemChanged("C1", True), DoorChanged("C1", False)]
        await inputs.aclose()
        clock[0] = 3600.0
        meter = await sim.read_meter()
        assert meter.energy_wh == pytest.approx(18.0 + 2 * 0.002)
        assert sim.state()["compartments"]["C2"]["faults"] == ["jam"]


async def test_unknown_compartment_and_fault_are_driver_errors() -> None:
    sim = SimulatedCabinet(_specs())
    with pytest.raises(DriverError):
        await sim.fire_relay("C9")
    with pytest.raises(DriverError, match="unknown fault"):
        await sim.inject_fault("melt", "C1")


async def test_actor_helpers_report_what_opened() -> None:
    sim = SimulatedCabinet(_specs())

    async def fake_agent() -> None:  # opens C2 for any scan, like an agent with a reservation
        async for _ in sim.inputs():
            await sim.fire_relay("C2")
            return

    task = asyncio.create_task(fake_agent())
    result = await sim.courier_deposit("P1", timeout_s=2)
    await task
    assert (result.opened, result.relay_fired) == ("C2", True)
    assert sim.state()["compartments"]["C2"] == {
        "size": "S",
        "door_open": False,
        "item": True,
        "item_reading": True,
        "temperature_c": None,
        "relay_pulses": 1,
        "faults": [],
    }
    refused = await sim.recipient_pickup("123456", timeout_s=0.1)
    assert (refused.opened, refused.relay_fired) == (None, False)
