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
import logging
import random
from collections.abc import Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from edge.cabinet import (
    CompartmentRecord,
    CompartmentState,
    DoorClosed,
    DoorMachine,
    DoorOpened,
    Intent,
    Keypad,
)
from edge.driver import (
    CompartmentSpec,
    DoorChanged,
    HardwareDriver,
    InputEvent,
    ItemChanged,
    KeypadEntry,
    Scanned,
    SizeClass,
)
from edge.errors import DriverError, LinkError
from edge.link import Link
from edge.outbox import Outbox
from edge.settings import EdgeSettings
from edge.store import Store
from lockerhub.clock import Clock, SystemClock
from lockerhub.codes import MAX_DIGITS, MIN_DIGITS, verify_code
from lockerhub.topics import Kind
from lockerhub.v1 import common_pb2, device_pb2

log = logging.getLogger(__name__)

_SIZE_PROTO = {
    SizeClass.XS: common_pb2.SIZE_CLASS_XS,
    SizeClass.S: common_pb2.SIZE_CLASS_S,
    SizeClass.M: common_pb2.SIZE_CLASS_M,
    SizeClass.L: common_pb2.SIZE_CLASS_L,
    SizeClass.XL: common_pb2.SIZE_CLASS_XL,
}
Outcome = device_pb2.CommandResult
_COMMAND_QUEUE = 64
_DOOR_POLL_S = 0.02
_HOUSEKEEPING_S = 1.0
_OFFLINE_PUBLISH_S = 2.0
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
    dropped_commands: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Applied:
    """What a command did: its result plus the state and events committed with it."""

    result: device_pb2.CommandResult
    compartments: tuple[CompartmentRecord, ...] = ()
    events: tuple[device_pb2.DeviceEvent, ...] = ()


def _valid_id(value: str) -> bool:
    return 0 < len(value) <= 64 and value.isprintable() and not any(c in value for c in "/+#")


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
        self._keypad = Keypad(
            max_failures=settings.keypad.max_failures,
            lockout_ms=int(settings.keypad.lockout_s * 1000),
        )
        self._lock = asyncio.Lock()
        self._commands: asyncio.Queue[device_pb2.Command] = asyncio.Queue(_COMMAND_QUEUE)
        self._telemetry_due = asyncio.Event()
        self._rng = random.Random()  # noqa: S311 - backoff jitter, not cryptography
        self._attempt = 0
        self.boot_count = 0
        self.connected = asyncio.Event()
        self.stats = AgentStats()

    # -- lifespan --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        stack = AsyncExitStack()
        try:
            s = self.settings
            store = await stack.enter_async_context(
                Store(s.storage.path, outbox_max=s.storage.outbox_max)
            )
            await stack.enter_async_context(self._driver)
            self.boot_count = await store.next_boot()
            self._specs = {c.compartment_id: c for c in self._driver.compartments()}
            self._records = await store.load_compartments(self._specs)
            for cid in self._specs:
                self._doors[cid] = DoorMachine(door_open=await self._driver.read_door(cid))
            await store.prune_commands(self._clock.now_ms() - _COMMAND_MEMORY_MS)
        except BaseException:
            await stack.aclose()
            raise
        self._store_obj = store
        self._outbox_obj = Outbox(store)
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

    # -- read-only views (tests, status) ---------------------------------------------------

    def compartment(self, compartment_id: str) -> CompartmentRecord:
        """The current record of a compartment."""
        return self._records[compartment_id]

    @property
    def outbox_depth(self) -> int:
        """Events and results waiting for the broker."""
        return self._store.outbox_depth

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
                self.connected.clear()
        if failure is not None:
            raise failure

    async def _serve(self, link: Link) -> LinkError | None:
        """Run one connection's tasks; returns the link failure that ended it."""
        failure: LinkError | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._read_commands(link))
                tg.create_task(self._outbox.pump(link.publish))
                tg.create_task(self._telemetry_loop(link))
        except* LinkError as group:
            failure = LinkError(str(group.exceptions[0]))
        return failure

    async def _read_commands(self, link: Link) -> None:
        async for command in link.commands():
            await self._commands.put(command)

    async def _status(
        self, state: device_pb2.DeviceStatus.State.ValueType
    ) -> device_pb2.DeviceStatus:
        return device_pb2.DeviceStatus(
            state=state,
            boot_count=self.boot_count,
            ts_ms=self._clock.now_ms(),
            kind=device_pb2.DEVICE_KIND_CABINET,
            firmware_version=self.settings.device.firmware_version,
            compartments=[_spec_proto(c) for c in self._specs.values()],
            last_seq=await self._store.last_seq(),
        )

    # -- telemetry and housekeeping --------------------------------------------------------

    async def _telemetry_loop(self, link: Link) -> None:
        interval = self.settings.telemetry.interval_s
        while True:
            self._telemetry_due.clear()
            try:
                sample = await self._telemetry()
            except DriverError as exc:
                log.warning("telemetry skipped: %s", exc)
            else:
                await link.publish_message(Kind.TELEMETRY, sample)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._telemetry_due.wait()

    async def _telemetry(self) -> device_pb2.Telemetry:
        sample = device_pb2.Telemetry(ts_ms=self._clock.now_ms())
        for cid in self._specs:
            sample.compartments.append(
                device_pb2.CompartmentStatus(
                    compartment_id=cid,
                    state=self._records[cid].state.to_proto(),
                    door_open=await self._driver.read_door(cid),
                    item_present=await self._driver.read_item(cid),
                )
            )
        meter = await self._driver.read_meter()
        sample.energy_wh = meter.energy_wh
        sample.power_w = meter.power_w
        sample.outbox_depth = self._store.outbox_depth
        return sample

    async def _housekeeping_loop(self) -> None:
        while True:
            await asyncio.sleep(_HOUSEKEEPING_S)
            async with self._lock:
                now = self._clock.now_ms()
                expired = [
                    rec.freed()
                    for rec in self._records.values()
                    if rec.state is CompartmentState.RESERVED
                    and not rec.reservation_live(now)
                    and self._doors[rec.compartment_id].phase == "closed"
                ]
                if expired:
                    await self._commit(compartments=expired)
                    self._telemetry_due.set()

    async def _commit(
        self,
        *,
        compartments: Iterable[CompartmentRecord] = (),
        events: Iterable[device_pb2.DeviceEvent] = (),
        results: Iterable[device_pb2.CommandResult] = (),
    ) -> None:
        records = list(compartments)
        await self._store.commit(
            now_ms=self._clock.now_ms(), compartments=records, events=events, results=results
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
            case ItemChanged():
                self._telemetry_due.set()
            case Scanned(code=code):
                await self._on_scan(code)
            case KeypadEntry(code=code):
                await self._on_code(code)

    async def _on_scan(self, parcel_id: str) -> None:
        async with self._lock:
            now = self._clock.now_ms()
            rec = next(
                (
                    r
                    for r in self._records.values()
                    if _valid_id(parcel_id) and r.parcel_id == parcel_id and r.reservation_live(now)
                ),
                None,
            )
            if rec is None:
                self.stats.scans_refused += 1
                log.info("scan refused: no live reservation for the scanned parcel")
                return
            await self._open(rec.compartment_id, Intent.DEPOSIT, rec.parcel_id, now)

    async def _on_code(self, code: str) -> None:
        now = self._clock.now_ms()
        if not self._keypad.locked(now):
            candidates = [
                (r.compartment_id, r.parcel_id, r.code_hash)
                for r in self._records.values()
                if r.state is CompartmentState.OCCUPIED and r.code_hash
            ]
            # PBKDF2 per live code: off the loop (conventions: nothing blocks the event loop).
            match = await asyncio.to_thread(_match_code, code, candidates)
            if match is not None:
                self._keypad.success()
                async with self._lock:
                    await self._open(match[0], Intent.PICKUP, match[1], self._clock.now_ms())
                return
        verdict = self._keypad.failure(now)
        events = [
            _event(
                pickup_code_rejected=device_pb2.PickupCodeRejected(
                    consecutive_failures=verdict.consecutive_failures,
                    locked_out=verdict.locked_out,
                )
            )
        ]
        if verdict.lockout_started:
            events.append(
                _alarm(
                    common_pb2.ALARM_KIND_KEYPAD_LOCKOUT,
                    "",
                    f"keypad locked for {self.settings.keypad.lockout_s:g} s after "
                    f"{verdict.consecutive_failures} wrong codes",
                )
            )
        log.info("wrong pickup code (%d consecutive)", verdict.consecutive_failures)
        async with self._lock:
            await self._commit(events=events)

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
                if not commanded:
                    events.append(
                        _alarm(common_pb2.ALARM_KIND_DOOR_FORCED, cid, "closed", active=False)
                    )
                rec = self._records[cid]
                item = await self._driver.read_item(cid)
                parcel = rec.parcel_id if rec.parcel_id == transition.parcel_id else None
                if (
                    transition.intent is Intent.DEPOSIT
                    and item
                    and parcel is not None
                    and rec.state is CompartmentState.RESERVED
                ):
                    records.append(rec.occupied())
                    events.append(
                        _event(deposited=device_pb2.Deposited(parcel_id=parcel, compartment_id=cid))
                    )
                elif (
                    transition.intent is Intent.PICKUP
                    and not item
                    and parcel is not None
                    and rec.state is CompartmentState.OCCUPIED
                ):
                    records.append(rec.freed())
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
                outcome=common_pb2.COMMAND_OUTCOME_REJECTED,
                ts_ms=self._clock.now_ms(),
                detail="interrupted by a restart; not re-run (relay state unknown)",
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
        if body == "open_compartment":
            applied = await self._open_command(command)
        else:
            async with self._lock:
                applied = self._apply(command)
        async with self._lock:
            await self._commit(
                compartments=applied.compartments, events=applied.events, results=[applied.result]
            )
        if applied.compartments:
            self._telemetry_due.set()

    def _result(
        self,
        command: device_pb2.Command,
        outcome: common_pb2.CommandOutcome.ValueType,
        detail: str = "",
        *,
        relay_fired: bool = False,
    ) -> device_pb2.CommandResult:
        return Outcome(
            command_id=command.command_id,
            outcome=outcome,
            ts_ms=self._clock.now_ms(),
            relay_fired=relay_fired,
            detail=detail,
        )

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

    def _apply(self, command: device_pb2.Command) -> _Applied:
        """Reserve, cancel and set-code commands: pure decisions on the records."""
        rejected = common_pb2.COMMAND_OUTCOME_REJECTED
        applied = common_pb2.COMMAND_OUTCOME_APPLIED
        body = command.WhichOneof("body")
        now = self._clock.now_ms()
        if body == "reserve_compartment":
            r = command.reserve_compartment
            rec = self._records.get(r.compartment_id)
            if rec is None or not _valid_id(r.parcel_id):
                return _Applied(self._result(command, rejected, "unknown compartment or parcel"))
            if r.expires_ms and r.expires_ms <= now:
                return _Applied(self._result(command, rejected, "reservation already expired"))
            if self._held_elsewhere(r.parcel_id, r.compartment_id, now):
                return _Applied(
                    self._result(command, rejected, "parcel held in another compartment")
                )
            reusable = rec.state is CompartmentState.FREE or (
                rec.state is CompartmentState.RESERVED
                and (rec.parcel_id == r.parcel_id or not rec.reservation_live(now))
            )
            if not reusable:
                return _Applied(self._result(command, rejected, f"compartment is {rec.state}"))
            return _Applied(
                self._result(command, applied), (rec.reserved(r.parcel_id, r.expires_ms),)
            )
        if body == "cancel_reservation":
            c = command.cancel_reservation
            rec = self._records.get(c.compartment_id)
            if rec is None:
                return _Applied(self._result(command, rejected, "unknown compartment"))
            if rec.parcel_id != c.parcel_id or rec.state is not CompartmentState.RESERVED:
                if rec.parcel_id == c.parcel_id and rec.state is CompartmentState.OCCUPIED:
                    return _Applied(self._result(command, rejected, "parcel already deposited"))
                return _Applied(self._result(command, applied, "no such reservation"))
            return _Applied(self._result(command, applied), (rec.freed(),))
        if body == "set_pickup_code":
            p = command.set_pickup_code
            rec = self._records.get(p.compartment_id)
            if rec is None or not p.parcel_id or rec.parcel_id != p.parcel_id:
                return _Applied(
                    self._result(command, rejected, "parcel is not in that compartment")
                )
            if not p.code_hash.startswith("pbkdf2_sha256$") or len(p.code_hash) > 512:
                return _Applied(self._result(command, rejected, "unsupported code hash"))
            updated = CompartmentRecord(
                compartment_id=rec.compartment_id,
                state=rec.state,
                parcel_id=rec.parcel_id,
                reserved_until_ms=rec.reserved_until_ms,
                code_hash=p.code_hash,
                code_deadline_ms=p.deadline_ms or None,
            )
            return _Applied(self._result(command, applied), (updated,))
        return _Applied(self._result(command, rejected, "unsupported command"))

    def _held_elsewhere(self, parcel_id: str, compartment_id: str, now: int) -> bool:
        return any(
            r.parcel_id == parcel_id
            and r.compartment_id != compartment_id
            and (r.state is CompartmentState.OCCUPIED or r.reservation_live(now))
            for r in self._records.values()
        )


def _match_code(
    code: str, candidates: Sequence[tuple[str, str | None, str | None]]
) -> tuple[str, str | None] | None:
    """The (compartment, parcel) whose stored hash matches ``code`` (runs in a worker thread)."""
    if not (code.isdigit() and MIN_DIGITS <= len(code) <= MAX_DIGITS):
        return None
    for cid, parcel_id, code_hash in candidates:
        if code_hash and verify_code(code, code_hash):
            return cid, parcel_id
    return None


def _event(**body: object) -> device_pb2.DeviceEvent:
    """A DeviceEvent with one body; the store assigns event_id, seq and ts_ms."""
    return device_pb2.DeviceEvent(**body)  # type: ignore[arg-type]


def _alarm(
    kind: common_pb2.AlarmKind.ValueType, cid: str, detail: str, *, active: bool = True
) -> device_pb2.DeviceEvent:
    return _event(
        alarm=device_pb2.AlarmRaised(kind=kind, compartment_id=cid, detail=detail, active=active)
    )


def _spec_proto(spec: CompartmentSpec) -> common_pb2.CompartmentSpec:
    return common_pb2.CompartmentSpec(
        compartment_id=spec.compartment_id,
        size=_SIZE_PROTO[spec.size],
        inner=common_pb2.Dimensions(
            width_mm=spec.width_mm, height_mm=spec.height_mm, depth_mm=spec.depth_mm
        ),
        max_weight_g=spec.max_weight_g,
        zone=common_pb2.TEMPERATURE_ZONE_CHILLED
        if spec.chilled
        else common_pb2.TEMPERATURE_ZONE_AMBIENT,
    )
