"""Command execution: hub commands (each id at most once) and desired states, in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from edge.cabinet import Intent
from edge.commands import Applied, apply_record_command, make_result
from edge.desired import apply_desired
from edge.errors import CommandError, DriverError
from edge.inputs import open_door
from edge.messages import alarm
from edge.settings import EdgeSettings
from edge.sorter import SorterController, SortPlan
from edge.state import KV_CONFIG, CabinetState
from edge.stats import AgentStats
from lockerhub.driver import HardwareDriver, SorterDriver
from lockerhub.v1 import common_pb2, device_pb2

log = logging.getLogger(__name__)

Incoming = device_pb2.Command | device_pb2.DesiredState
Outcome = device_pb2.CommandResult
_DOOR_POLL_S = 0.02
_INTERRUPTED = "interrupted by a restart; not re-run (check the compartment)"


class Executor:
    """Takes commands and desired states from ``commands`` and carries them out, one at a time.

    Args:
        status_changed: republishes the retained status (the applied desired version changed).
    """

    def __init__(
        self,
        settings: EdgeSettings,
        state: CabinetState,
        driver: HardwareDriver,
        *,
        stats: AgentStats,
        commands: asyncio.Queue[Incoming],
        sorter: SorterController | None,
        status_changed: Callable[[], Awaitable[None]],
    ) -> None:
        self._settings = settings
        self._state = state
        self._driver = driver
        self._stats = stats
        self._commands = commands
        self._sorter = sorter
        self._status_changed = status_changed

    async def run(self) -> None:
        while True:
            command = await self._commands.get()
            if isinstance(command, device_pb2.DesiredState):
                await self.apply_desired(command)
                continue
            self._stats.commands += 1
            try:
                await self.execute(command)
            except DriverError as exc:  # pragma: no cover - handlers map driver faults
                log.error("command %.64s failed: %s", command.command_id, exc)

    def _result(
        self,
        command: device_pb2.Command,
        outcome: common_pb2.CommandOutcome.ValueType,
        detail: str = "",
        *,
        relay_fired: bool = False,
    ) -> Outcome:
        now = self._state.clock.now_ms()
        return make_result(command, outcome, now, detail, relay_fired=relay_fired)

    async def execute(self, command: device_pb2.Command) -> None:
        state = self._state
        cid = command.command_id
        seen = await state.store.command(cid)
        if seen is not None:
            # Never execute twice (a relay could pulse twice); re-send what we reported.
            self._stats.duplicate_commands += 1
            result = seen.result or Outcome(
                command_id=cid,
                outcome=common_pb2.COMMAND_OUTCOME_INTERRUPTED,
                ts_ms=state.clock.now_ms(),
                detail=_INTERRUPTED,
            )
            async with state.change() as tx:
                tx.report(result)
            return
        now = state.clock.now_ms()
        if now > command.expires_ms:
            async with state.change() as tx:
                tx.report(self._result(command, common_pb2.COMMAND_OUTCOME_EXPIRED, "expired"))
            return
        await state.store.begin_command(cid, now)
        body = command.WhichOneof("body")
        if body == "open_compartment":
            applied = await self._open_command(command)
        elif body == "resend_events":
            applied = await self._resend(command)
        elif body == "update_config":
            await self._update_config(command)
            return
        else:
            async with state.change() as tx:
                applied = apply_record_command(state.records, command, state.clock.now_ms())
                tx.save(*applied.compartments)
                tx.emit(*applied.events)
                tx.report(applied.result)
            return
        async with state.change() as tx:
            tx.save(*applied.compartments)
            tx.emit(*applied.events)
            tx.report(applied.result)

    async def _update_config(self, command: device_pb2.Command) -> None:
        state = self._state
        try:
            new_config = state.config.merged(command.update_config)
        except CommandError as exc:
            async with state.change() as tx:
                tx.report(self._result(command, common_pb2.COMMAND_OUTCOME_REJECTED, str(exc)))
            return
        overlay = await self._config_overlay(command.update_config)
        async with state.change() as tx:
            tx.put(KV_CONFIG, overlay)
            tx.set_config(new_config)
            tx.report(self._result(command, common_pb2.COMMAND_OUTCOME_APPLIED))

    async def _resend(self, command: device_pb2.Command) -> Applied:
        r = command.resend_events
        now = self._state.clock.now_ms()
        try:
            queued = await self._state.store.resend(r.from_seq, r.to_seq, now)
        except CommandError as exc:
            return Applied(self._result(command, common_pb2.COMMAND_OUTCOME_REJECTED, str(exc)))
        self._state.outbox.notify()
        return Applied(
            self._result(command, common_pb2.COMMAND_OUTCOME_APPLIED, f"{queued} event(s) queued")
        )

    async def _config_overlay(self, config: device_pb2.DeviceConfig) -> bytes:
        """The persisted overlay with ``config`` merged in (later non-zero fields win)."""
        overlay = device_pb2.DeviceConfig()
        raw = await self._state.store.get_blob(KV_CONFIG)
        if raw:
            with contextlib.suppress(ValueError):
                overlay.ParseFromString(raw)
        for fd, value in config.ListFields():
            setattr(overlay, fd.name, value)
        return overlay.SerializeToString(deterministic=True)

    async def apply_desired(self, desired: device_pb2.DesiredState) -> None:
        """Apply a newer desired state whole; ignore an older or equal one."""
        state = self._state
        applied_version = state.desired_version
        if desired.version <= applied_version:
            self._stats.desired_ignored += 1
            log.info("desired v%d ignored (applied v%d)", desired.version, applied_version)
            return
        new_config = state.config
        overlay: bytes | None = None
        if desired.HasField("config"):
            try:
                new_config = state.config.merged(desired.config)
                overlay = await self._config_overlay(desired.config)
            except CommandError as exc:
                log.warning("desired v%d: config not applied: %s", desired.version, exc)
        unknown = {
            *(r.compartment_id for r in desired.reservations),
            *(c.compartment_id for c in desired.pickup_codes),
            *desired.disabled_compartments,
        } - set(state.specs)
        if unknown:
            log.warning(
                "desired v%d names %d unknown compartment(s)", desired.version, len(unknown)
            )
        async with state.change() as tx:
            now = state.clock.now_ms()
            pending_since = await state.store.oldest_pending_event_ms()
            protected = {
                cid
                for cid, rec in state.records.items()
                if rec.local_ms is not None
                and pending_since is not None
                and rec.local_ms >= pending_since
            }
            changed = apply_desired(state.records, desired, protected=protected, now_ms=now)
            tx.save(*changed)
            tx.set_desired(desired)
            if overlay is not None:
                tx.put(KV_CONFIG, overlay)
            tx.set_config(new_config)
        self.apply_plan()
        self._stats.desired_applied += 1
        log.info("desired v%d applied: %d compartment(s) changed", desired.version, len(changed))
        # The retained status carries the applied version (device-shadow "reported").
        await self._status_changed()

    def apply_plan(self) -> None:
        """Give the sorter the plan of the applied desired state."""
        desired = self._state.desired
        if self._sorter is not None and desired is not None:
            assert isinstance(self._driver, SorterDriver)
            self._sorter.plan = SortPlan.from_desired(desired, self._driver.chutes())

    async def _open_command(self, command: device_pb2.Command) -> Applied:
        state = self._state
        cid = command.open_compartment.compartment_id
        if cid not in state.specs:
            return Applied(
                self._result(command, common_pb2.COMMAND_OUTCOME_REJECTED, "unknown compartment")
            )
        async with state.change() as tx:
            try:
                was_open = await self._driver.read_door(cid)
                # Fire even when the sensor reads open: a broken sensor cable must not lock a
                # parcel in (domain notes, door truths).
                await open_door(
                    tx, self._driver, cid, Intent.COMMAND, None, arm_ms=self._settings.door.arm_ms
                )
            except DriverError as exc:
                log.error("relay of %s failed: %s", cid, exc)
                return Applied(
                    self._result(command, common_pb2.COMMAND_OUTCOME_REJECTED, "relay fault")
                )
        if was_open:
            return Applied(
                self._result(command, common_pb2.COMMAND_OUTCOME_ALREADY_OPEN, relay_fired=True)
            )
        if await self._wait_door_open(cid):
            return Applied(
                self._result(command, common_pb2.COMMAND_OUTCOME_OPENED, relay_fired=True)
            )
        state.doors[cid].disarm()
        return Applied(
            self._result(
                command,
                common_pb2.COMMAND_OUTCOME_JAMMED,
                "door sensor still closed after the relay pulse",
                relay_fired=True,
            ),
            events=(
                alarm(common_pb2.ALARM_KIND_DOOR_JAMMED, cid, "relay fired, door stayed closed"),
            ),
        )

    async def _wait_door_open(self, cid: str) -> bool:
        clock = self._state.clock
        deadline = clock.now_ms() + self._settings.door.open_confirm_ms
        while True:
            try:
                if await self._driver.read_door(cid):
                    return True
            except DriverError as exc:
                log.warning("door sensor of %s unreadable: %s", cid, exc)
            if clock.now_ms() >= deadline:
                return False
            await clock.sleep(_DOOR_POLL_S)
