"""The cabinet agent: a lifespan composing the store, the driver and the collaborators.

The collaborators share one :class:`edge.state.CabinetState` (memory follows the commit):
``Session`` (MQTT presence, reconnects), ``Inputs`` (doors, scans, codes), ``Executor`` (commands,
desired state), ``Telemetry`` and ``Housekeeping``. Their loops run supervised in one TaskGroup:
a loop that raises is logged, counted in ``stats.loop_restarts`` and restarted after a backoff;
only the lifespan (cancelling ``run``) ends the agent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self

from edge.cabinet import CompartmentRecord, DoorMachine
from edge.desired import RuntimeConfig
from edge.errors import ConfigError, DriverError
from edge.executor import Executor, Incoming
from edge.housekeeping import Housekeeping
from edge.inputs import Inputs
from edge.messages import alarm
from edge.outbox import Outbox
from edge.pickup import PickupGuard
from edge.session import Session
from edge.settings import EdgeSettings
from edge.sorter import SorterController
from edge.state import CabinetState
from edge.stats import AgentStats
from edge.store import Store
from edge.telemetry import Telemetry
from lockerhub.backoff import Backoff
from lockerhub.clock import Clock, SystemClock
from lockerhub.driver import HardwareDriver, SorterDriver
from lockerhub.states import CompartmentState
from lockerhub.supervise import supervise
from lockerhub.v1 import common_pb2, device_pb2

# Restart delays of a failed loop: quick first (a transient fault), capped for a crash loop.
_RESTART_MIN_S = 0.1
_RESTART_MAX_S = 30.0

__all__ = ["AgentStats", "EdgeAgent"]

log = logging.getLogger(__name__)

_COMMAND_QUEUE = 64
_RELAYS_OFF_S = 2.0
_INTERRUPTED = "interrupted by a restart; not re-run (check the compartment)"


@dataclasses.dataclass(slots=True)
class _Parts:
    state: CabinetState
    session: Session
    inputs: Inputs
    executor: Executor
    telemetry: Telemetry
    housekeeping: Housekeeping


class EdgeAgent:
    """A cabinet's agent; ``async with EdgeAgent(...) as agent: await agent.run()``.

    Args:
        settings: validated settings (device identity, broker, storage, timings).
        driver: the hardware; the agent enters and exits its context.
        clock: time for timestamps, expiry and every loop's sleeping (tests pass a ManualClock).
    """

    def __init__(
        self, settings: EdgeSettings, driver: HardwareDriver, *, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        self._driver = driver
        self._clock: Clock = clock or SystemClock()
        self._stack: AsyncExitStack | None = None
        self._parts: _Parts | None = None
        self._rng = random.Random()  # noqa: S311 - backoff jitter, not cryptography
        self._commands: asyncio.Queue[Incoming] = asyncio.Queue(_COMMAND_QUEUE)
        self.connected = asyncio.Event()
        self.stats = AgentStats()
        self.sorter: SorterController | None = None
        if settings.device.kind == "sorting_line":
            if not isinstance(driver, SorterDriver):
                raise ConfigError("device.kind = 'sorting_line' needs a sorting-line driver")
            self.sorter = SorterController(
                driver, settings.sorter, self._emit_events, clock=self._clock
            )

    # -- lifespan --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        async with AsyncExitStack() as stack:
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
            self._parts = parts = await self._compose(store)
            log.info(
                "edge agent %s/%s boot %d: %d compartments, %d events pending",
                s.device.site,
                s.device.id,
                parts.state.boot_count,
                len(parts.state.specs),
                store.outbox_depth,
            )
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        self._parts = None
        if stack is not None:
            await stack.aclose()

    async def _compose(self, store: Store) -> _Parts:
        s = self.settings
        config = RuntimeConfig.from_settings(s)
        state = CabinetState(
            store,
            Outbox(store, clock=self._clock),
            specs={c.compartment_id: c for c in self._driver.compartments()},
            config=config,
            guard=PickupGuard(
                max_failures=config.keypad_max_failures,
                lockout_ms=int(config.keypad_lockout_s * 1000),
                max_lockout_ms=int(s.keypad.max_lockout_s * 1000),
            ),
            clock=self._clock,
            boot_count=await store.next_boot(),
        )
        # Relays off first, before anything can pulse one (domain notes: door truths).
        dead = await self._relays_off(state)
        await state.load(s)
        now = self._clock.now_ms()
        for cid in state.specs:
            try:
                door_open = await self._driver.read_door(cid)
            except DriverError:
                door_open = False
            state.doors[cid] = DoorMachine(door_open=door_open, now_ms=now)
        session = Session(
            s,
            state,
            stats=self.stats,
            commands=self._commands,
            kind=device_pb2.DEVICE_KIND_CABINET
            if self.sorter is None
            else device_pb2.DEVICE_KIND_SORTING_LINE,
            rng=self._rng,
            connected=self.connected,
        )
        parts = _Parts(
            state=state,
            session=session,
            inputs=Inputs(s, state, self._driver, stats=self.stats, sorter=self.sorter),
            executor=Executor(
                s,
                state,
                self._driver,
                stats=self.stats,
                commands=self._commands,
                sorter=self.sorter,
                status_changed=session.publish_status,
            ),
            telemetry=Telemetry(
                state,
                self._driver,
                stats=self.stats,
                link=lambda: session.link,
                sorter=self.sorter,
            ),
            housekeeping=Housekeeping(state, self._driver, stats=self.stats),
        )
        parts.executor.apply_plan()
        await parts.housekeeping.prune()
        await self._report_startup(state, dead)
        return parts

    @property
    def _p(self) -> _Parts:
        if self._parts is None:
            raise RuntimeError("EdgeAgent is not entered")
        return self._parts

    async def run(self) -> None:
        """Serve the cabinet until cancelled; a clean cancel publishes OFFLINE first."""
        p = self._p
        loops: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("edge-inputs", p.inputs.run),
            ("edge-commands", p.executor.run),
            ("edge-link", p.session.run),
            ("edge-housekeeping", p.housekeeping.run),
            ("edge-telemetry", p.telemetry.run),
        ]
        if self.sorter is not None:
            loops.append(("edge-sorter", self._sorter_loop))
        async with asyncio.TaskGroup() as tg:
            for name, loop in loops:
                tg.create_task(
                    supervise(
                        name,
                        loop,
                        clock=self._clock,
                        on_restart=self._count_restart,
                        backoff=Backoff(_RESTART_MIN_S, _RESTART_MAX_S, rng=self._rng),
                        stable_s=_RESTART_MAX_S,
                        # A loop that returns has finished (e.g. the driver's input stream ended).
                        restart_on_return=False,
                    ),
                    name=name,
                )

    def _count_restart(self, name: str) -> None:
        restarts = self.stats.loop_restarts
        restarts[name] = restarts.get(name, 0) + 1

    # -- read-only views (tests, status) ---------------------------------------------------

    @property
    def state(self) -> CabinetState:
        """The cabinet state the collaborators share."""
        return self._p.state

    @property
    def housekeeping(self) -> Housekeeping:
        return self._p.housekeeping

    @property
    def boot_count(self) -> int:
        """This start's boot counter (persisted, one per start)."""
        return self._p.state.boot_count if self._parts is not None else 0

    def compartment(self, compartment_id: str) -> CompartmentRecord:
        """The current record of a compartment."""
        return self._p.state.records[compartment_id]

    @property
    def outbox_depth(self) -> int:
        """Events and results waiting for the broker."""
        return self._p.state.store.outbox_depth

    @property
    def outbox_full(self) -> bool:
        """The outbox is at its bound (telemetry coalesced, results shed, events kept)."""
        return self._p.state.store.outbox_full

    @property
    def desired_version(self) -> int:
        """Version of the hub's desired state this cabinet applied (0: none)."""
        return self._p.state.desired_version

    @property
    def config(self) -> RuntimeConfig:
        """The runtime config in force (settings, then the hub's DeviceConfig)."""
        return self._p.state.config

    def keypad_locked(self, compartment_id: str | None = None) -> bool:
        """True while the keypad (or one compartment's code entry) is locked out."""
        return self._p.state.pickup.locked(self._clock.now_ms(), compartment_id)

    # -- sorting line ----------------------------------------------------------------------

    async def _emit_events(self, events: Sequence[device_pb2.DeviceEvent]) -> None:
        async with self._p.state.change() as tx:
            tx.emit(*events)

    async def _sorter_loop(self) -> None:
        """Send unconfirmed drops to the exception chute once their time is up, and report a
        newly applied plan version."""
        assert self.sorter is not None
        tick = min(0.1, self.settings.sorter.confirm_timeout_s / 4)
        while True:
            await self._clock.sleep(tick)
            await self.sorter.report_plan()
            await self.sorter.expire()

    # -- start-up --------------------------------------------------------------------------

    async def _relays_off(self, state: CabinetState) -> list[int]:
        """Switch relays off board by board; a dead board is reported, never retried in a loop."""
        dead: list[int] = []
        for board in sorted({spec.board for spec in state.specs.values()}):
            try:
                async with asyncio.timeout(_RELAYS_OFF_S):
                    await self._driver.relays_off(board)
            except (DriverError, TimeoutError) as exc:
                log.error("lock board %d did not answer at start-up: %s", board, exc)
                dead.append(board)
        self.stats.dead_boards = len(dead)
        return dead

    async def _report_startup(self, state: CabinetState, dead_boards: Sequence[int]) -> None:
        """Commit INTERRUPTED for commands a crash cut short, and alarms for dead boards."""
        now = self._clock.now_ms()
        interrupted = await state.store.interrupted_commands()
        if interrupted:
            log.warning("%d command(s) interrupted by the last restart", len(interrupted))
        async with state.change() as tx:
            tx.report(
                *(
                    device_pb2.CommandResult(
                        command_id=cid,
                        outcome=common_pb2.COMMAND_OUTCOME_INTERRUPTED,
                        ts_ms=now,
                        detail=_INTERRUPTED,
                    )
                    for cid in interrupted
                )
            )
            for board in dead_boards:
                for spec in state.specs.values():
                    rec = state.records[spec.compartment_id]
                    if spec.board == board and rec.state is not CompartmentState.FAULT:
                        tx.save(dataclasses.replace(rec, state=CompartmentState.FAULT))
                tx.emit(
                    alarm(
                        common_pb2.ALARM_KIND_SENSOR_FAULT, "", f"lock board {board} not answering"
                    )
                )
