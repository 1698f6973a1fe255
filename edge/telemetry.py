"""Telemetry: a sample every interval and on occupancy changes; offline, only the latest waits."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from edge.errors import DriverError, LinkError, StorageError
from edge.link import Link
from edge.sorter import SorterController
from edge.state import CabinetState, MeterTotals
from edge.stats import AgentStats
from lockerhub.clock import wait_or_sleep
from lockerhub.driver import HardwareDriver
from lockerhub.topics import Kind
from lockerhub.v1 import device_pb2

log = logging.getLogger(__name__)


class Telemetry:
    """Samples the cabinet and publishes (or, offline, coalesces) the sample.

    Args:
        link: the current MQTT link, or None while offline.
    """

    def __init__(
        self,
        state: CabinetState,
        driver: HardwareDriver,
        *,
        stats: AgentStats,
        link: Callable[[], Link | None],
        sorter: SorterController | None,
    ) -> None:
        self._state = state
        self._driver = driver
        self._stats = stats
        self._link = link
        self._sorter = sorter
        # The last raw meter reading: a sampling cursor, persisted only with the totals.
        self._last_raw_wh: float | None = None

    async def run(self) -> None:
        """Sample every ``telemetry_interval_s`` of the clock, or sooner when something changed."""
        state = self._state
        while True:
            state.telemetry_due.clear()
            try:
                sample = await self.sample()
            except DriverError as exc:
                log.warning("telemetry skipped: %s", exc)
            else:
                await self.send(sample)
            await wait_or_sleep(state.telemetry_due, state.clock, state.config.telemetry_interval_s)

    async def send(self, sample: device_pb2.Telemetry) -> None:
        link = self._link()
        if link is not None:
            with contextlib.suppress(LinkError):
                await link.publish_message(Kind.TELEMETRY, sample)
                return
        # Offline: one coalesced sample waits in the outbox (each supersedes the last).
        state = self._state
        try:
            await state.store.coalesce_telemetry(
                sample.SerializeToString(deterministic=True), state.clock.now_ms()
            )
        except StorageError as exc:
            log.warning("telemetry not stored: %s", exc)
        self._stats.telemetry_coalesced += 1
        state.outbox.notify()

    async def sample(self) -> device_pb2.Telemetry:
        state = self._state
        sample = device_pb2.Telemetry(ts_ms=state.clock.now_ms())
        for cid, spec in state.specs.items():
            status = device_pb2.CompartmentStatus(
                compartment_id=cid,
                state=state.records[cid].reported_state().to_proto(),
                door_open=state.doors[cid].phase == "open",
            )
            with contextlib.suppress(DriverError):
                status.door_open = await self._driver.read_door(cid)
            with contextlib.suppress(DriverError):
                status.item_present = await self._driver.read_item(cid)
            if spec.chilled:
                with contextlib.suppress(DriverError):
                    temp = await self._driver.read_temperature(cid)
                    if temp is not None:
                        status.has_temperature = True
                        status.temperature_c = temp
            sample.compartments.append(status)
        meter = await self._driver.read_meter()
        sample.energy_wh = await self._monotonic_energy(meter.energy_wh)
        sample.power_w = meter.power_w
        sample.outbox_depth = state.store.outbox_depth
        sample.last_seq = state.store.counters.last_seq
        sample.desired_version = state.desired_version
        if self._sorter is not None:
            sample.sorter.CopyFrom(self._sorter.counters)
            sample.chutes.extend(self._sorter.chutes())
        return sample

    async def _monotonic_energy(self, raw_wh: float) -> float:
        """The meter's Wh counter made monotonic across meter resets (offset persisted)."""
        totals = self._state.meter
        last = self._last_raw_wh if self._last_raw_wh is not None else totals.last_wh
        offset = totals.offset_wh
        reset = last is not None and raw_wh < last - 0.5
        if last is not None and reset:
            offset += last
            log.warning("energy meter counter went back (%.1f -> %.1f Wh): reset", last, raw_wh)
        if last is None or reset or int(raw_wh) // 10 != int(last) // 10:
            # Persist now and then (every 10 Wh) so a restart after a reset keeps the total.
            try:
                async with self._state.change() as tx:
                    tx.set_meter(MeterTotals(offset, raw_wh))
            except StorageError as exc:
                # The cursor stays where it was: the next sample sees the reset again.
                log.warning("meter totals not stored: %s", exc)
                return offset + raw_wh
        self._last_raw_wh = raw_wh
        return offset + raw_wh
