"""Housekeeping: reservation expiry, door-left-open and temperature alarms, pruning old commands."""

from __future__ import annotations

import logging

from edge.errors import DriverError
from edge.messages import alarm
from edge.state import CabinetState
from edge.stats import AgentStats
from lockerhub.driver import HardwareDriver
from lockerhub.states import CompartmentState
from lockerhub.v1 import common_pb2, device_pb2

log = logging.getLogger(__name__)

SWEEP_S = 1.0
PRUNE_EVERY_MS = 3_600_000
# Processed command ids are kept far longer than any command lives (commands expire in minutes).
COMMAND_MEMORY_MS = 30 * 86_400_000


class Housekeeping:
    """One sweep every ``SWEEP_S`` of the clock; ``stats.housekeeping_sweeps`` counts them."""

    def __init__(self, state: CabinetState, driver: HardwareDriver, *, stats: AgentStats) -> None:
        self._state = state
        self._driver = driver
        self._stats = stats
        self._pruned_ms: int | None = None

    async def run(self) -> None:
        while True:
            await self._state.clock.sleep(SWEEP_S)
            await self.sweep()

    async def prune(self) -> None:
        """Forget processed commands older than ``COMMAND_MEMORY_MS``."""
        now = self._state.clock.now_ms()
        await self._state.store.prune_commands(now - COMMAND_MEMORY_MS)
        self._pruned_ms = now

    async def sweep(self) -> None:
        """Reservation expiry, door-left-open and chilled-temperature alarms (and pruning)."""
        state = self._state
        temperatures: dict[str, float] = {}
        for cid, spec in state.specs.items():
            if not spec.chilled:
                continue
            try:
                temp = await self._driver.read_temperature(cid)
            except DriverError:
                continue
            if temp is not None:
                temperatures[cid] = temp
        if self._due(temperatures):
            await self._apply(temperatures)
        if self._pruned_ms is None or state.clock.now_ms() - self._pruned_ms >= PRUNE_EVERY_MS:
            await self.prune()
        self._stats.housekeeping_sweeps += 1

    def _due(self, temperatures: dict[str, float]) -> bool:
        """Whether anything needs a change (checked again under the lock; most sweeps: no)."""
        state, c = self._state, self._state.config
        now = state.clock.now_ms()
        alarms = state.temperature_alarms
        for cid, temp in temperatures.items():
            if (not c.chilled_min_c <= temp <= c.chilled_max_c) != alarms.get(cid, False):
                return True
        limit_ms = int(c.door_left_open_s * 1000)
        # Plain loops: a fleet runs this for every cabinet every second.
        for door in state.doors.values():
            if door.left_open(now, limit_ms):
                return True
        reserved = CompartmentState.RESERVED
        for rec in state.records.values():
            if rec.state is reserved and not rec.reservation_live(now):
                return True
        return False

    async def _apply(self, temperatures: dict[str, float]) -> None:
        state = self._state
        async with state.change() as tx:
            c = state.config
            now = state.clock.now_ms()
            for cid, temp in temperatures.items():
                bad = not c.chilled_min_c <= temp <= c.chilled_max_c
                if bad != state.temperature_alarms.get(cid, False):
                    tx.set_temperature_alarm(cid, bad)
                    tx.emit(_temperature_alarm(cid, temp, bad, c.chilled_min_c, c.chilled_max_c))
            limit_ms = int(c.door_left_open_s * 1000)
            for cid, door in state.doors.items():
                if door.left_open(now, limit_ms):
                    log.warning("compartment %s left open", cid)
                    tx.emit(
                        alarm(
                            common_pb2.ALARM_KIND_DOOR_LEFT_OPEN,
                            cid,
                            f"open for more than {c.door_left_open_s:g} s",
                        )
                    )
                    tx.after(door.left_open_raised)
            tx.save(
                *(
                    rec.freed()
                    for rec in state.records.values()
                    if rec.state is CompartmentState.RESERVED
                    and not rec.reservation_live(now)
                    and state.doors[rec.compartment_id].phase == "closed"
                )
            )


def _temperature_alarm(
    cid: str, temp: float, bad: bool, low: float, high: float
) -> device_pb2.DeviceEvent:
    detail = f"{temp:.1f} C outside {low:g}..{high:g} C" if bad else f"{temp:.1f} C back in range"
    return alarm(common_pb2.ALARM_KIND_TEMPERATURE_OUT_OF_RANGE, cid, detail, active=bad)
