"""The cabinet's state: one object owns the lock and the rule that memory follows the commit.

Compartment records, runtime config, the pickup guard, the applied desired state, alarm flags and
the meter totals live here and change only through :meth:`CabinetState.change`::

    async with state.change() as tx:
        tx.save(record)          # drafts: nothing in memory moves yet
        tx.emit(event)
    # committed to SQLite, then applied to memory; a failed commit raised and applied nothing

The lock is held for the whole block, so a decision (read records, call the driver) and the
commit that records it are one step. Door machines mirror the door sensors, not database rows:
they change when the hardware reports, inside a change block.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from edge.cabinet import CompartmentRecord, DoorMachine
from edge.desired import RuntimeConfig
from edge.errors import CommandError
from edge.outbox import Outbox
from edge.pickup import PickupGuard
from edge.settings import EdgeSettings
from edge.store import Store
from lockerhub.clock import Clock
from lockerhub.driver import CompartmentSpec
from lockerhub.v1 import device_pb2

log = logging.getLogger(__name__)

KV_DESIRED = "desired"
KV_CONFIG = "config"
KV_KEYPAD = "keypad"
KV_METER = "meter"


@dataclass(frozen=True, slots=True)
class MeterTotals:
    """The energy meter's persisted totals (its counter restarts at 0 after a reset or swap)."""

    offset_wh: float = 0.0
    last_wh: float | None = None

    def to_blob(self) -> bytes:
        return json.dumps({"offset_wh": self.offset_wh, "last_wh": self.last_wh}).encode()


class Change:
    """Drafts of one change to the cabinet state; applied by :meth:`CabinetState.change`."""

    def __init__(self, state: CabinetState) -> None:
        self.state = state
        self._reset()

    def _reset(self) -> None:
        self.compartments: dict[str, CompartmentRecord] = {}
        self.events: list[device_pb2.DeviceEvent] = []
        self.results: list[device_pb2.CommandResult] = []
        self.blobs: dict[str, bytes] = {}
        self.config: RuntimeConfig | None = None
        self.desired: device_pb2.DesiredState | None = None
        self.temp_alarm: dict[str, bool] = {}
        self.meter: MeterTotals | None = None
        self.pickup: PickupGuard | None = None
        self.effects: list[Callable[[], None]] = []

    @property
    def empty(self) -> bool:
        return not (
            self.compartments
            or self.events
            or self.results
            or self.blobs
            or self.config
            or self.desired
            or self.temp_alarm
            or self.meter
            or self.pickup
            or self.effects
        )

    def save(self, *records: CompartmentRecord) -> None:
        """Replace these compartment records."""
        for rec in records:
            self.compartments[rec.compartment_id] = rec

    def emit(self, *events: device_pb2.DeviceEvent) -> None:
        """Append events to the outbox (they get their seq at the commit)."""
        self.events.extend(events)

    def report(self, *results: device_pb2.CommandResult) -> None:
        """Store command results and queue them for the hub."""
        self.results.extend(results)

    def put(self, key: str, value: bytes) -> None:
        """Store a small blob (config overlay, desired state)."""
        self.blobs[key] = value

    def guard(self) -> PickupGuard:
        """A draft of the pickup guard to change; it replaces the state's after the commit."""
        if self.pickup is None:
            self.pickup = copy.deepcopy(self.state.pickup)
        return self.pickup

    def set_config(self, config: RuntimeConfig) -> None:
        """Put ``config`` in force (and the keypad limits it carries)."""
        self.config = config
        self.guard().configure(
            max_failures=config.keypad_max_failures,
            lockout_ms=int(config.keypad_lockout_s * 1000),
        )

    def set_desired(self, desired: device_pb2.DesiredState) -> None:
        """The hub's desired state was applied (persisted, and its version reported)."""
        self.desired = desired
        self.put(KV_DESIRED, desired.SerializeToString(deterministic=True))

    def set_temperature_alarm(self, compartment_id: str, active: bool) -> None:
        self.temp_alarm[compartment_id] = active

    def set_meter(self, meter: MeterTotals) -> None:
        self.meter = meter
        self.put(KV_METER, meter.to_blob())

    def after(self, apply: Callable[[], None]) -> None:
        """Run ``apply`` (a memory change) only once this change committed."""
        self.effects.append(apply)

    async def commit(self) -> None:
        """Commit what is drafted so far and apply it (the lock stays held)."""
        await self.state._commit(self)
        self._reset()


class CabinetState:
    """Everything the agent knows about its cabinet; read freely, change through ``change()``.

    Args:
        store: the open database (the outbox counters are its own, also replaced after commits).
        outbox: woken after every commit that queued something.
        specs: the compartments the driver reported.
        config: the runtime config before any stored overlay.
        guard: the pickup guard before any stored counters.
        clock: time for commits.
    """

    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        *,
        specs: Mapping[str, CompartmentSpec],
        config: RuntimeConfig,
        guard: PickupGuard,
        clock: Clock,
        boot_count: int = 0,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.clock = clock
        self.specs: Mapping[str, CompartmentSpec] = MappingProxyType(dict(specs))
        self.boot_count = boot_count
        self._records: dict[str, CompartmentRecord] = {}
        self.doors: dict[str, DoorMachine] = {}
        self._config = config
        self._pickup = guard
        self._desired: device_pb2.DesiredState | None = None
        self._temp_alarm: dict[str, bool] = {}
        self._meter = MeterTotals()
        self._lock = asyncio.Lock()
        # Set when something a telemetry sample shows changed (occupancy, config).
        self.telemetry_due = asyncio.Event()

    # -- loading ---------------------------------------------------------------------------

    async def load(self, settings: EdgeSettings) -> None:
        """Read records and blobs from the store (at start-up, before anything runs)."""
        store = self.store
        self._records = await store.load_compartments(self.specs)
        raw = await store.get_blob(KV_DESIRED)
        if raw:
            desired = device_pb2.DesiredState()
            with contextlib.suppress(ValueError):
                desired.ParseFromString(raw)
                self._desired = desired
        raw = await store.get_blob(KV_CONFIG)
        if raw:
            overlay = device_pb2.DeviceConfig()
            try:
                overlay.ParseFromString(raw)
                self._config = self._config.merged(overlay)
            except (ValueError, CommandError) as exc:
                log.warning("stored config ignored: %s", exc)
        self._pickup = PickupGuard(
            max_failures=self._config.keypad_max_failures,
            lockout_ms=int(self._config.keypad_lockout_s * 1000),
            max_lockout_ms=int(settings.keypad.max_lockout_s * 1000),
        )
        raw = await store.get_blob(KV_KEYPAD)
        if raw:
            self._pickup.load_blob(raw, self.specs)
        raw = await store.get_blob(KV_METER)
        if raw:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                saved = json.loads(raw)
                self._meter = MeterTotals(float(saved["offset_wh"]), float(saved["last_wh"]))

    # -- read-only views -------------------------------------------------------------------

    @property
    def records(self) -> Mapping[str, CompartmentRecord]:
        return MappingProxyType(self._records)

    @property
    def config(self) -> RuntimeConfig:
        return self._config

    @property
    def pickup(self) -> PickupGuard:
        """The committed pickup guard: ask it, change it only through ``Change.guard()``."""
        return self._pickup

    @property
    def desired(self) -> device_pb2.DesiredState | None:
        """The desired state applied last (None: none yet)."""
        return self._desired

    @property
    def desired_version(self) -> int:
        return self._desired.version if self._desired is not None else 0

    @property
    def temperature_alarms(self) -> Mapping[str, bool]:
        return MappingProxyType(self._temp_alarm)

    @property
    def meter(self) -> MeterTotals:
        return self._meter

    def snapshot(self) -> dict[str, object]:
        """What is backed by the database, for comparing memory with a fresh load."""
        return {
            "records": dict(self._records),
            "config": self._config,
            "keypad": json.loads(self._pickup.to_blob()),
            "desired_version": self.desired_version,
            "meter": self._meter,
        }

    # -- the one way to change it ----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def change(self) -> AsyncIterator[Change]:
        """Hold the lock, collect drafts, commit them, then apply them to memory.

        Raises:
            StorageError: the commit failed; memory is as before the block.
        """
        async with self._lock:
            tx = Change(self)
            yield tx
            await self._commit(tx)

    async def _commit(self, tx: Change) -> None:
        if tx.empty:
            return
        blobs = dict(tx.blobs)
        if tx.pickup is not None:
            blobs[KV_KEYPAD] = tx.pickup.to_blob()
        if tx.compartments or tx.events or tx.results or blobs:
            await self.store.commit(
                now_ms=self.clock.now_ms(),
                compartments=tx.compartments.values(),
                events=tx.events,
                results=tx.results,
                blobs=blobs.items(),
            )
        # Committed: memory follows.
        self._records.update(tx.compartments)
        if tx.pickup is not None:
            self._pickup = tx.pickup
        if tx.config is not None:
            self._config = tx.config
        if tx.desired is not None:
            self._desired = tx.desired
        self._temp_alarm.update(tx.temp_alarm)
        if tx.meter is not None:
            self._meter = tx.meter
        for apply in tx.effects:
            apply()
        if tx.events or tx.results:
            self.outbox.notify()
        if tx.compartments or tx.config is not None:
            self.telemetry_due.set()
