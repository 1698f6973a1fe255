"""The cabinet agent: composes store, driver and MQTT link, and runs the cabinet's long tasks.

Tasks (one TaskGroup, each owned): driver inputs -> cabinet logic; the command worker; the
connection loop (reconnect with jittered exponential backoff, aiomqtt docs/reconnection.md style)
which per connection reads commands, pumps the outbox and sends telemetry; housekeeping
(reservation expiry). Every business event and command result is committed to SQLite before it
is published; the outbox replays it after any outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
from collections.abc import Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from edge.cabinet import CompartmentRecord, DoorClosed, DoorMachine, DoorOpened, Intent
from edge.commands import Applied as _Applied
from edge.commands import apply_record_command, make_result, valid_id
from edge.desired import RuntimeConfig, apply_desired
from edge.errors import CommandError, ConfigError, DriverError, LinkError, StorageError
from edge.link import Link
from edge.messages import alarm as _alarm
from edge.messages import event as _event
from edge.messages import match_code as _match_code
from edge.messages import spec_proto as _spec_proto
from edge.outbox import Outbox
from edge.pickup import PickupGuard
from edge.settings import EdgeSettings
from edge.sorter import SorterController, SortPlan
from edge.store import Store
from lockerhub.clock import Clock, SystemClock
from lockerhub.driver import (
    ChuteChanged,
    CompartmentSpec,
    DoorChanged,
    DropConfirmed,
    HardwareDriver,
    Inducted,
    InputEvent,
    ItemChanged,
    KeypadEntry,
    Scanned,
    SorterDriver,
)
from lockerhub.states import CompartmentState
from lockerhub.topics import Kind
from lockerhub.v1 import common_pb2, device_pb2

log = logging.getLogger(__name__)

Outcome = device_pb2.CommandResult
_COMMAND_QUEUE = 64
_DOOR_POLL_S = 0.02
_HOUSEKEEPING_S = 1.0
_OFFLINE_PUBLISH_S = 2.0
_RELAYS_OFF_S = 2.0
_STATUS_CHECK_S = 1.0
_KV_DESIRED = "desired"
_KV_CONFIG = "config"
_KV_KEYPAD = "keypad"
_KV_METER = "meter"
Incoming = device_pb2.Command | device_pb2.DesiredState
# Processed command ids are kept far longer than any command lives (commands expire in minutes).
_COMMAND_MEMORY_MS = 30 * 86_400_000


@dataclass(slots=True)
class AgentStats:
    """Counters for logs, status and (later) metrics."""

    connects: int = 0
    connect_failures: int = 0
    commands: int = 0
    duplicate_commands: int = 0
    scans_refused: int = 0
    input_errors: int = 0
    desired_applied: int = 0
    desired_ignored: int = 0
    sensor_faults: int = 0
    dead_boards: int = 0
    telemetry_coalesced: int = 0
    dropped_commands: dict[str, int] = field(default_factory=dict)


def backoff_delay(attempt: int, *, low: float, high: float, rng: random.Random) -> float:
    """Jittered exponential backoff: ``low * 2**attempt`` capped at ``high``, times 0.5-1.0."""
    return float(min(high, low * 2 ** min(attempt, 30)) * rng.uniform(0.5, 1.0))


class EdgeAgent:
    """A cabinet's agent; ``async with EdgeAgent(...) as agent: await agent.run()``.

    Args:
        settings: validated settings (device identity, broker, storage, timings).
        driver: the hardware; the agent enters and exits its context.
        clock: wall clock for timestamps and expiry (tests pass a ManualClock).
    """

    def __init__(
        self, settings: EdgeSettings, driver: HardwareDriver, *, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        self._driver = driver
        self._clock: Clock = clock or SystemClock()
        self._stack: AsyncExitStack | None = None
        self._store_obj: Store | None = None
        self._outbox_obj: Outbox | None = None
        self._specs: dict[str, CompartmentSpec] = {}
        self._records: dict[str, CompartmentRecord] = {}
        self._doors: dict[str, DoorMachine] = {}
        self._config = RuntimeConfig.from_settings(settings)
        self._pickup = self._new_guard()
        self._desired_version = 0
        self._temp_alarm: dict[str, bool] = {}
        # The meter's counter restarts at 0 after a reset or swap; the reported counter must not
        # go backwards (the hub computes kWh from differences), so earlier totals are kept here.
        self._meter_offset_wh = 0.0
        self._meter_last_wh: float | None = None
        self._link: Link | None = None
        self._reported_full = False
        self._lock = asyncio.Lock()
        self._commands: asyncio.Queue[Incoming] = asyncio.Queue(_COMMAND_QUEUE)
        self._telemetry_due = asyncio.Event()
        self._rng = random.Random()  # noqa: S311 - backoff jitter, not cryptography
        self._attempt = 0
        self.boot_count = 0
        self.connected = asyncio.Event()
        self.stats = AgentStats()
        self.sorter: SorterController | None = None
        if settings.device.kind == "sorting_line":
            if not isinstance(driver, SorterDriver):
                raise ConfigError("device.kind = 'sorting_line' needs a sorting-line driver")
            self.sorter = SorterController(driver, settings.sorter, self._emit_events)

    # -- lifespan --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        stack = AsyncExitStack()
        try:
            s = self.settings
            store = await stack.enter_async_context(
                Store(
                    s.storage.path,
                    outbox_max=s.storage.outbox_max,
                    outbox_max_bytes=s.storage.outbox_max_bytes,
                    resend_window=s.storage.resend_window,
                )
            )
            await stack.enter_async_context(self._driver)
            self._store_obj = store
            self._outbox_obj = Outbox(store, clock=self._clock)
            self.boot_count = await store.next_boot()
            self._specs = {c.compartment_id: c for c in self._driver.compartments()}
            # Relays off first, before anything can pulse one (domain notes: door truths).
            dead = await self._relays_off()
            self._records = await store.load_compartments(self._specs)
            await self._load_persisted()
            now = self._clock.now_ms()
            for cid in self._specs:
                try:
                    door_open = await self._driver.read_door(cid)
                except DriverError:
                    door_open = False
                self._doors[cid] = DoorMachine(door_open=door_open, now_ms=now)
            await store.prune_commands(now - _COMMAND_MEMORY_MS)
            await self._report_startup(dead)
        except BaseException:
            self._store_obj = self._outbox_obj = None
            await stack.aclose()
            raise
        self._reported_full = store.outbox_full
        self._stack = stack
        log.info(
            "edge agent %s/%s boot %d: %d compartments, %d events pending",
            s.device.site,
            s.device.id,
            self.boot_count,
            len(self._specs),
            store.outbox_depth,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        self._store_obj = self._outbox_obj = None
        if stack is not None:
            await stack.aclose()

    @property
    def _store(self) -> Store:
        if self._store_obj is None:
            raise RuntimeError("EdgeAgent is not entered")
        return self._store_obj

    @property
    def _outbox(self) -> Outbox:
        if self._outbox_obj is None:
            raise RuntimeError("EdgeAgent is not entered")
        return self._outbox_obj

    async def run(self) -> None:
        """Serve the cabinet until cancelled; a clean cancel publishes OFFLINE first."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._input_loop(), name="edge-inputs")
            tg.create_task(self._command_loop(), name="edge-commands")
            tg.create_task(self._connection_loop(), name="edge-link")
            tg.create_task(self._housekeeping_loop(), name="edge-housekeeping")
            tg.create_task(self._telemetry_loop(), name="edge-telemetry")
            if self.sorter is not None:
                tg.create_task(self._sorter_loop(self.sorter), name="edge-sorter")

    # -- read-only views (tests, status) ---------------------------------------------------

    def compartment(self, compartment_id: str) -> CompartmentRecord:
        """The current record of a compartment."""
        return self._records[compartment_id]

    @property
    def outbox_depth(self) -> int:
        """Events and results waiting for the broker."""
        return self._store.outbox_depth

    @property
    def outbox_full(self) -> bool:
        """The outbox is at its bound (telemetry coalesced, results shed, events kept)."""
        return self._store.outbox_full

    @property
    def desired_version(self) -> int:
        """Version of the hub's desired state this cabinet applied (0: none)."""
        return self._desired_version

    @property
    def config(self) -> RuntimeConfig:
        """The runtime config in force (settings, then the hub's DeviceConfig)."""
        return self._config

    def keypad_locked(self, compartment_id: str | None = None) -> bool:
        """True while the keypad (or one compartment's code entry) is locked out."""
        return self._pickup.locked(self._clock.now_ms(), compartment_id)

    # -- sorting line ----------------------------------------------------------------------

    async def _emit_events(self, events: Sequence[device_pb2.DeviceEvent]) -> None:
        async with self._lock:
            await self._commit(events=events)

    async def _sorter_loop(self, sorter: SorterController) -> None:
        """Send unconfirmed drops to the exception chute once their time is up."""
        tick = min(0.1, self.settings.sorter.confirm_timeout_s / 4)
        while True:
            await asyncio.sleep(tick)
            await sorter.expire()

    # -- start-up --------------------------------------------------------------------------

    def _new_guard(self) -> PickupGuard:
        return PickupGuard(
            max_failures=self._config.keypad_max_failures,
            lockout_ms=int(self._config.keypad_lockout_s * 1000),
            max_lockout_ms=int(self.settings.keypad.max_lockout_s * 1000),
        )

    async def _relays_off(self) -> list[int]:
        """Switch relays off board by board; a dead board is reported, never retried in a loop."""
        dead: list[int] = []
        for board in sorted({spec.board for spec in self._specs.values()}):
            try:
                async with asyncio.timeout(_RELAYS_OFF_S):
                    await self._driver.relays_off(board)
            except (DriverError, TimeoutError) as exc:
                log.error("lock board %d did not answer at start-up: %s", board, exc)
                dead.append(board)
        self.stats.dead_boards = len(dead)
        return dead

    async def _load_persisted(self) -> None:
        store = self._store
        raw = await store.get_blob(_KV_DESIRED)
        if raw:
            desired = device_pb2.DesiredState()
            with contextlib.suppress(ValueError):
                desired.ParseFromString(raw)
                self._desired_version = desired.version
                self._apply_plan(desired)
        raw = await store.get_blob(_KV_CONFIG)
        if raw:
            config = device_pb2.DeviceConfig()
            try:
                config.ParseFromString(raw)
                self._config = self._config.merged(config)
            except (ValueError, CommandError) as exc:
                log.warning("stored config ignored: %s", exc)
        self._pickup = self._new_guard()
        raw = await store.get_blob(_KV_KEYPAD)
        if raw:
            self._pickup.load_blob(raw, self._specs)
        raw = await store.get_blob(_KV_METER)
        if raw:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                saved = json.loads(raw)
                self._meter_offset_wh = float(saved["offset_wh"])
                self._meter_last_wh = float(saved["last_wh"])

    async def _report_startup(self, dead_boards: Sequence[int]) -> None:
        """Commit INTERRUPTED for commands a crash cut short, and alarms for dead boards."""
        now = self._clock.now_ms()
        results = [
            Outcome(
                command_id=cid,
                outcome=common_pb2.COMMAND_OUTCOME_INTERRUPTED,
                ts_ms=now,
                detail="interrupted by a restart; not re-run (check the compartment)",
            )
            for cid in await self._store.interrupted_commands()
        ]
        events = []
        records = []
        for board in dead_boards:
            for spec in self._specs.values():
                if spec.board == board:
                    rec = self._records[spec.compartment_id]
                    if rec.state is not CompartmentState.FAULT:
                        records.append(dataclasses.replace(rec, state=CompartmentState.FAULT))
            events.append(
                _alarm(common_pb2.ALARM_KIND_SENSOR_FAULT, "", f"lock board {board} not answering")
            )
        if results or events:
            if results:
                log.warning("%d command(s) interrupted by the last restart", len(results))
            await self._commit(compartments=records, events=events, results=results)

    # -- connection ------------------------------------------------------------------------

    async def _connection_loop(self) -> None:
        b = self.settings.broker
        while True:
            try:
                await self._session()
            except LinkError as exc:
                self.stats.connect_failures += 1
                delay = backoff_delay(
                    self._attempt, low=b.reconnect_min_s, high=b.reconnect_max_s, rng=self._rng
                )
                self._attempt += 1
                log.warning("broker link down (%s); retry %d in %.1fs", exc, self._attempt, delay)
                await asyncio.sleep(delay)

    async def _session(self) -> None:
        d = self.settings.device
        will = await self._status(device_pb2.DeviceStatus.STATE_OFFLINE)
        async with Link(
            self.settings.broker,
            site=d.site,
            device=d.id,
            will=will,
            dropped=self.stats.dropped_commands,
        ) as link:
            try:
                # Birth before anything else so the hub sees this boot's presence first.
                await link.publish_message(
                    Kind.STATUS, await self._status(device_pb2.DeviceStatus.STATE_ONLINE)
                )
                self.stats.connects += 1
                self._attempt = 0
                self._reported_full = self._store.outbox_full
                self._link = link
                self.connected.set()
                log.info("connected to %s:%d", self.settings.broker.host, self.settings.broker.port)
                failure = await self._serve(link)
            except asyncio.CancelledError:
                # Clean shutdown: the broker sends no will on a normal DISCONNECT (MQTT 5,
                # 3.1.2.5), so say OFFLINE ourselves, bounded in time.
                self.connected.clear()
                with contextlib.suppress(LinkError, TimeoutError):
                    async with asyncio.timeout(_OFFLINE_PUBLISH_S):
                        await link.publish_message(
                            Kind.STATUS, await self._status(device_pb2.DeviceStatus.STATE_OFFLINE)
                        )
                raise
            finally:
                self._link = None
                self.connected.clear()
        if failure is not None:
            raise failure

    async def _serve(self, link: Link) -> LinkError | None:
        """Run one connection's tasks; returns the link failure that ended it."""
        failure: LinkError | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._read_commands(link))
                tg.create_task(
                    self._outbox.pump(
                        link.publish, rate_per_s=self.settings.storage.replay_rate_per_s
                    )
                )
                tg.create_task(self._status_loop(link))
        except* LinkError as group:
            failure = LinkError(str(group.exceptions[0]))
        return failure

    async def _read_commands(self, link: Link) -> None:
        async for message in link.incoming():
            await self._commands.put(message)

    async def _status_loop(self, link: Link) -> None:
        """Republish the retained status when outbox_full changes (the hub should know)."""
        while True:
            await asyncio.sleep(_STATUS_CHECK_S)
            full = self._store.outbox_full
            if full != self._reported_full:
                await link.publish_message(
                    Kind.STATUS, await self._status(device_pb2.DeviceStatus.STATE_ONLINE)
                )
                self._reported_full = full

    async def _status(
        self, state: device_pb2.DeviceStatus.State.ValueType
    ) -> device_pb2.DeviceStatus:
        return device_pb2.DeviceStatus(
            state=state,
            boot_count=self.boot_count,
            ts_ms=self._clock.now_ms(),
            kind=device_pb2.DEVICE_KIND_CABINET
            if self.sorter is None
            else device_pb2.DEVICE_KIND_SORTING_LINE,
            firmware_version=self.settings.device.firmware_version,
            compartments=[_spec_proto(c) for c in self._specs.values()],
            last_seq=await self._store.last_seq(),
            desired_version=self._desired_version,
            outbox_full=self._store.outbox_full,
        )

    # -- telemetry and housekeeping --------------------------------------------------------

    async def _telemetry_loop(self) -> None:
        """Sample every interval (and on occupancy changes); offline, keep only the latest."""
        while True:
            self._telemetry_due.clear()
            try:
                sample = await self._telemetry()
            except DriverError as exc:
                log.warning("telemetry skipped: %s", exc)
            else:
                await self._send_telemetry(sample)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._config.telemetry_interval_s):
                    await self._telemetry_due.wait()

    async def _send_telemetry(self, sample: device_pb2.Telemetry) -> None:
        link = self._link
        if link is not None:
            with contextlib.suppress(LinkError):
                await link.publish_message(Kind.TELEMETRY, sample)
                return
        # Offline: one coalesced sample waits in the outbox (each supersedes the last).
        try:
            await self._store.coalesce_telemetry(
                sample.SerializeToString(deterministic=True), self._clock.now_ms()
            )
        except StorageError as exc:
            log.warning("telemetry not stored: %s", exc)
        self.stats.telemetry_coalesced += 1
        self._outbox.notify()

    async def _telemetry(self) -> device_pb2.Telemetry:
        sample = device_pb2.Telemetry(ts_ms=self._clock.now_ms())
        for cid, spec in self._specs.items():
            status = device_pb2.CompartmentStatus(
                compartment_id=cid,
                state=self._records[cid].reported_state().to_proto(),
                door_open=self._doors[cid].phase == "open",
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
        sample.outbox_depth = self._store.outbox_depth
        sample.desired_version = self._desired_version
        if self.sorter is not None:
            sample.sorter.CopyFrom(self.sorter.counters)
            sample.chutes.extend(self.sorter.chutes())
        return sample

    async def _monotonic_energy(self, raw_wh: float) -> float:
        """The meter's Wh counter made monotonic across meter resets (offset persisted)."""
        last = self._meter_last_wh
        self._meter_last_wh = raw_wh
        if last is not None and raw_wh < last - 0.5:
            self._meter_offset_wh += last
            log.warning("energy meter counter went back (%.1f -> %.1f Wh): reset", last, raw_wh)
        if last is None or raw_wh < last - 0.5 or int(raw_wh) // 10 != int(last) // 10:
            # Persist now and then (every 10 Wh) so a restart after a reset keeps the total.
            blob = json.dumps({"offset_wh": self._meter_offset_wh, "last_wh": raw_wh}).encode()
            with contextlib.suppress(StorageError):
                await self._store.put_blob(_KV_METER, blob)
        return self._meter_offset_wh + raw_wh

    async def _housekeeping_loop(self) -> None:
        while True:
            await asyncio.sleep(_HOUSEKEEPING_S)
            await self._housekeeping()

    async def _housekeeping(self) -> None:
        """Reservation expiry, door-left-open and chilled-temperature alarms."""
        events: list[device_pb2.DeviceEvent] = []
        for cid, spec in self._specs.items():
            if not spec.chilled:
                continue
            try:
                temp = await self._driver.read_temperature(cid)
            except DriverError:
                continue
            if temp is None:
                continue
            c = self._config
            bad = not c.chilled_min_c <= temp <= c.chilled_max_c
            if bad != self._temp_alarm.get(cid, False):
                self._temp_alarm[cid] = bad
                events.append(
                    _alarm(
                        common_pb2.ALARM_KIND_TEMPERATURE_OUT_OF_RANGE,
                        cid,
                        f"{temp:.1f} C outside {c.chilled_min_c:g}..{c.chilled_max_c:g} C"
                        if bad
                        else f"{temp:.1f} C back in range",
                        active=bad,
                    )
                )
        async with self._lock:
            now = self._clock.now_ms()
            limit_ms = int(self._config.door_left_open_s * 1000)
            for cid, door in self._doors.items():
                if door.left_open(now, limit_ms):
                    log.warning("compartment %s left open", cid)
                    events.append(
                        _alarm(
                            common_pb2.ALARM_KIND_DOOR_LEFT_OPEN,
                            cid,
                            f"open for more than {self._config.door_left_open_s:g} s",
                        )
                    )
            expired = [
                rec.freed()
                for rec in self._records.values()
                if rec.state is CompartmentState.RESERVED
                and not rec.reservation_live(now)
                and self._doors[rec.compartment_id].phase == "closed"
            ]
            if expired or events:
                await self._commit(compartments=expired, events=events)
            if expired:
                self._telemetry_due.set()

    async def _commit(
        self,
        *,
        compartments: Iterable[CompartmentRecord] = (),
        events: Iterable[device_pb2.DeviceEvent] = (),
        results: Iterable[device_pb2.CommandResult] = (),
        blobs: Iterable[tuple[str, bytes]] = (),
    ) -> None:
        records = list(compartments)
        await self._store.commit(
            now_ms=self._clock.now_ms(),
            compartments=records,
            events=events,
            results=results,
            blobs=blobs,
        )
        # Memory follows the database, never leads it.
        for rec in records:
            self._records[rec.compartment_id] = rec
        self._outbox.notify()

    # -- driver inputs ---------------------------------------------------------------------

    async def _input_loop(self) -> None:
        async for event in self._driver.inputs():
            try:
                await self._on_input(event)
            except DriverError as exc:
                self.stats.input_errors += 1
                log.warning("input %s not handled: %s", type(event).__name__, exc)

    async def _on_input(self, event: InputEvent) -> None:
        match event:
            case DoorChanged(compartment_id=cid, open=is_open):
                await self._on_door(cid, is_open)
            case ItemChanged(compartment_id=cid, present=present):
                await self._on_item(cid, present)
            case Scanned(code=code):
                await self._on_scan(code)
            case KeypadEntry(code=code, compartment_id=cid):
                await self._on_code(code, cid)
            case Inducted() if self.sorter is not None:
                await self.sorter.on_inducted(event)
            case DropConfirmed() if self.sorter is not None:
                await self.sorter.on_confirmed(event)
            case ChuteChanged(chute_id=chute, full=full) if self.sorter is not None:
                await self.sorter.on_chute(chute, full)

    async def _on_item(self, cid: str, present: bool) -> None:
        """An item can only appear or vanish while its door is open (or about to be)."""
        door = self._doors.get(cid)
        if door is None:
            return
        if not door.busy:
            self.stats.sensor_faults += 1
            log.warning("item sensor of %s changed behind a closed door", cid)
            async with self._lock:
                await self._commit(
                    events=[
                        _alarm(
                            common_pb2.ALARM_KIND_SENSOR_FAULT,
                            cid,
                            f"item sensor read {'present' if present else 'empty'} "
                            "with the door closed",
                        )
                    ]
                )
        self._telemetry_due.set()

    async def _on_scan(self, parcel_id: str) -> None:
        async with self._lock:
            now = self._clock.now_ms()
            rec = next(
                (
                    r
                    for r in self._records.values()
                    if valid_id(parcel_id)
                    and r.parcel_id == parcel_id
                    and r.reservation_live(now)
                    and not r.disabled
                ),
                None,
            )
            if rec is None:
                self.stats.scans_refused += 1
                log.info("scan refused: no live reservation for the scanned parcel")
                return
            await self._open(rec.compartment_id, Intent.DEPOSIT, rec.parcel_id, now)

    async def _on_code(self, code: str, chosen: str | None = None) -> None:
        now = self._clock.now_ms()
        if chosen is not None and chosen not in self._specs:
            chosen = None
        if not self._pickup.blocked(now, chosen):
            candidates = [
                (r.compartment_id, r.parcel_id, r.code_hash)
                for r in self._records.values()
                if r.state is CompartmentState.OCCUPIED
                and r.code_hash
                and (chosen is None or r.compartment_id == chosen)
            ]
            # PBKDF2 per live code: off the loop (conventions: nothing blocks the event loop).
            match = await asyncio.to_thread(_match_code, code, candidates)
            if match is not None:
                self._pickup.success(match[0])
                async with self._lock:
                    await self._commit(blobs=[(_KV_KEYPAD, self._pickup.to_blob())])
                    await self._open(match[0], Intent.PICKUP, match[1], self._clock.now_ms())
                return
        events = self._pickup.failure(now, chosen)
        log.info("wrong pickup code (%d consecutive)", self._pickup.consecutive_failures)
        async with self._lock:
            await self._commit(events=events, blobs=[(_KV_KEYPAD, self._pickup.to_blob())])

    async def _open(self, cid: str, intent: Intent, parcel_id: str | None, now: int) -> None:
        """Arm the door machine, then pulse the relay (caller holds the lock)."""
        door = self._doors[cid]
        door.arm(intent, parcel_id, now + self.settings.door.arm_ms)
        try:
            await self._driver.fire_relay(cid)
        except DriverError:
            door.disarm()
            raise

    async def _on_door(self, cid: str, is_open: bool) -> None:
        if cid not in self._doors:
            log.warning("door change on unknown compartment %.20r ignored", cid)
            return
        async with self._lock:
            was_left_open = self._doors[cid].left_open_alarmed
            transition = self._doors[cid].on_door(is_open, self._clock.now_ms())
            if transition is None:
                return
            commanded = transition.intent is not None
            events = [
                _event(
                    door_changed=device_pb2.DoorChanged(
                        compartment_id=cid, open=is_open, commanded=commanded
                    )
                )
            ]
            records: list[CompartmentRecord] = []
            if isinstance(transition, DoorOpened) and not commanded:
                log.warning("compartment %s opened without a command", cid)
                events.append(_alarm(common_pb2.ALARM_KIND_DOOR_FORCED, cid, "opened uncommanded"))
            elif isinstance(transition, DoorClosed):
                if was_left_open:
                    events.append(
                        _alarm(common_pb2.ALARM_KIND_DOOR_LEFT_OPEN, cid, "closed", active=False)
                    )
                if not commanded:
                    events.append(
                        _alarm(common_pb2.ALARM_KIND_DOOR_FORCED, cid, "closed", active=False)
                    )
                rec = self._records[cid]
                now = self._clock.now_ms()
                try:
                    item: bool | None = await self._driver.read_item(cid)
                except DriverError as exc:
                    # A broken sensor is a fault, never a parcel (nor the absence of one).
                    self.stats.sensor_faults += 1
                    log.warning("item sensor of %s unreadable: %s", cid, exc)
                    events.append(
                        _alarm(common_pb2.ALARM_KIND_SENSOR_FAULT, cid, "item sensor unreadable")
                    )
                    item = None
                parcel = rec.parcel_id if rec.parcel_id == transition.parcel_id else None
                if (
                    transition.intent is Intent.DEPOSIT
                    and item is True
                    and parcel is not None
                    and rec.state is CompartmentState.RESERVED
                ):
                    records.append(dataclasses.replace(rec.occupied(), local_ms=now))
                    events.append(
                        _event(deposited=device_pb2.Deposited(parcel_id=parcel, compartment_id=cid))
                    )
                elif (
                    transition.intent is Intent.PICKUP
                    and item is False
                    and parcel is not None
                    and rec.state is CompartmentState.OCCUPIED
                ):
                    records.append(dataclasses.replace(rec.freed(), local_ms=now))
                    events.append(
                        _event(picked_up=device_pb2.PickedUp(parcel_id=parcel, compartment_id=cid))
                    )
            await self._commit(compartments=records, events=events)
        if records:
            self._telemetry_due.set()

    # -- commands --------------------------------------------------------------------------

    async def _command_loop(self) -> None:
        while True:
            command = await self._commands.get()
            if isinstance(command, device_pb2.DesiredState):
                await self._on_desired(command)
                continue
            self.stats.commands += 1
            try:
                await self._execute(command)
            except DriverError as exc:  # pragma: no cover - handlers map driver faults
                log.error("command %.64s failed: %s", command.command_id, exc)

    async def _execute(self, command: device_pb2.Command) -> None:
        cid = command.command_id
        seen = await self._store.command(cid)
        if seen is not None:
            # Never execute twice (a relay could pulse twice); re-send what we reported.
            self.stats.duplicate_commands += 1
            result = seen.result or Outcome(
                command_id=cid,
                outcome=common_pb2.COMMAND_OUTCOME_INTERRUPTED,
                ts_ms=self._clock.now_ms(),
                detail="interrupted by a restart; not re-run (check the compartment)",
            )
            await self._commit(results=[result])
            return
        now = self._clock.now_ms()
        if now > command.expires_ms:
            await self._commit(
                results=[self._result(command, common_pb2.COMMAND_OUTCOME_EXPIRED, "expired")]
            )
            return
        await self._store.begin_command(cid, now)
        body = command.WhichOneof("body")
        blobs: list[tuple[str, bytes]] = []
        if body == "open_compartment":
            applied = await self._open_command(command)
        elif body == "resend_events":
            applied = await self._resend(command)
        elif body == "update_config":
            try:
                new_config = self._config.merged(command.update_config)
            except CommandError as exc:
                applied = _Applied(
                    self._result(command, common_pb2.COMMAND_OUTCOME_REJECTED, str(exc))
                )
            else:
                blobs.append((_KV_CONFIG, await self._config_overlay(command.update_config)))
                self._apply_config(new_config)
                applied = _Applied(self._result(command, common_pb2.COMMAND_OUTCOME_APPLIED))
        else:
            async with self._lock:
                applied = apply_record_command(self._records, command, self._clock.now_ms())
        async with self._lock:
            await self._commit(
                compartments=applied.compartments,
                events=applied.events,
                results=[applied.result],
                blobs=blobs,
            )
        if applied.compartments:
            self._telemetry_due.set()

    async def _resend(self, command: device_pb2.Command) -> _Applied:
        r = command.resend_events
        try:
            queued = await self._store.resend(r.from_seq, r.to_seq, self._clock.now_ms())
        except CommandError as exc:
            return _Applied(self._result(command, common_pb2.COMMAND_OUTCOME_REJECTED, str(exc)))
        self._outbox.notify()
        return _Applied(
            self._result(command, common_pb2.COMMAND_OUTCOME_APPLIED, f"{queued} event(s) queued")
        )

    async def _config_overlay(self, config: device_pb2.DeviceConfig) -> bytes:
        """The persisted overlay with ``config`` merged in (later non-zero fields win)."""
        overlay = device_pb2.DeviceConfig()
        raw = await self._store.get_blob(_KV_CONFIG)
        if raw:
            with contextlib.suppress(ValueError):
                overlay.ParseFromString(raw)
        for fd, value in config.ListFields():
            setattr(overlay, fd.name, value)
        return overlay.SerializeToString(deterministic=True)

    def _apply_config(self, config: RuntimeConfig) -> None:
        self._config = config
        self._pickup.configure(
            max_failures=config.keypad_max_failures,
            lockout_ms=int(config.keypad_lockout_s * 1000),
        )
        self._telemetry_due.set()

    async def _on_desired(self, desired: device_pb2.DesiredState) -> None:
        """Apply a newer desired state whole; ignore an older or equal one."""
        if desired.version <= self._desired_version:
            self.stats.desired_ignored += 1
            log.info("desired v%d ignored (applied v%d)", desired.version, self._desired_version)
            return
        blobs = [(_KV_DESIRED, desired.SerializeToString(deterministic=True))]
        new_config = self._config
        if desired.HasField("config"):
            try:
                new_config = self._config.merged(desired.config)
                blobs.append((_KV_CONFIG, await self._config_overlay(desired.config)))
            except CommandError as exc:
                log.warning("desired v%d: config not applied: %s", desired.version, exc)
        known = set(self._specs)
        unknown = {
            *(r.compartment_id for r in desired.reservations),
            *(c.compartment_id for c in desired.pickup_codes),
            *desired.disabled_compartments,
        } - known
        if unknown:
            log.warning(
                "desired v%d names %d unknown compartment(s)", desired.version, len(unknown)
            )
        async with self._lock:
            now = self._clock.now_ms()
            pending_since = await self._store.oldest_pending_event_ms()
            protected = {
                cid
                for cid, rec in self._records.items()
                if rec.local_ms is not None
                and pending_since is not None
                and rec.local_ms >= pending_since
            }
            changed = apply_desired(self._records, desired, protected=protected, now_ms=now)
            await self._commit(compartments=changed, blobs=blobs)
            self._desired_version = desired.version
            self._apply_plan(desired)
        self._apply_config(new_config)
        self.stats.desired_applied += 1
        log.info("desired v%d applied: %d compartment(s) changed", desired.version, len(changed))
        link = self._link
        if link is not None:
            # The retained status carries the applied version (device-shadow "reported").
            with contextlib.suppress(LinkError):
                await link.publish_message(
                    Kind.STATUS, await self._status(device_pb2.DeviceStatus.STATE_ONLINE)
                )

    def _apply_plan(self, desired: device_pb2.DesiredState) -> None:
        if self.sorter is not None and isinstance(self._driver, SorterDriver):
            self.sorter.plan = SortPlan.from_desired(desired, self._driver.chutes())

    def _result(
        self,
        command: device_pb2.Command,
        outcome: common_pb2.CommandOutcome.ValueType,
        detail: str = "",
        *,
        relay_fired: bool = False,
    ) -> device_pb2.CommandResult:
        return make_result(command, outcome, self._clock.now_ms(), detail, relay_fired=relay_fired)

    async def _open_command(self, command: device_pb2.Command) -> _Applied:
        cid = command.open_compartment.compartment_id
        if cid not in self._specs:
            return _Applied(
                self._result(command, common_pb2.COMMAND_OUTCOME_REJECTED, "unknown compartment")
            )
        async with self._lock:
            try:
                was_open = await self._driver.read_door(cid)
                # Fire even when the sensor reads open: a broken sensor cable must not lock a
                # parcel in (domain notes, door truths).
                await self._open(cid, Intent.COMMAND, None, self._clock.now_ms())
            except DriverError as exc:
                log.error("relay of %s failed: %s", cid, exc)
                return _Applied(
                    self._result(command, common_pb2.COMMAND_OUTCOME_REJECTED, "relay fault")
                )
        if was_open:
            return _Applied(
                self._result(command, common_pb2.COMMAND_OUTCOME_ALREADY_OPEN, relay_fired=True)
            )
        if await self._wait_door_open(cid):
            return _Applied(
                self._result(command, common_pb2.COMMAND_OUTCOME_OPENED, relay_fired=True)
            )
        self._doors[cid].disarm()
        return _Applied(
            self._result(
                command,
                common_pb2.COMMAND_OUTCOME_JAMMED,
                "door sensor still closed after the relay pulse",
                relay_fired=True,
            ),
            events=(
                _alarm(common_pb2.ALARM_KIND_DOOR_JAMMED, cid, "relay fired, door stayed closed"),
            ),
        )

    async def _wait_door_open(self, cid: str) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.door.open_confirm_ms / 1000
        while True:
            try:
                if await self._driver.read_door(cid):
                    return True
            except DriverError as exc:
                log.warning("door sensor of %s unreadable: %s", cid, exc)
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(_DOOR_POLL_S)
