"""Sorting-line mode: per inducted item scan -> decide the chute -> divert -> confirm.

The sort plan (destination -> chute, exception and hold chutes, parcels held at screening,
versioned) comes from the hub's desired state; the line reports each new plan version it applied
(SortPlanApplied) and the version behind every decision (ParcelSorted.plan_version). No-read, no
rule, or no drop confirmation in time -> the exception chute; a full chute ->
recirculate, and the exception chute after ``max_recirculations`` rounds (domain notes: sorting
lines). Every sorted item is a ParcelSorted event, every reject a ParcelRejected event; counters and
chute states go into telemetry. The controller decides and drives the line; the agent persists and
publishes the events it returns.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from edge.errors import DriverError
from edge.settings import SorterSettings
from lockerhub.clock import Clock, SystemClock
from lockerhub.driver import DropConfirmed, Inducted, SorterDriver
from lockerhub.v1 import common_pb2, device_pb2, sorting_pb2

log = logging.getLogger(__name__)

Reason = device_pb2.ParcelRejected.Reason
Emit = Callable[[Sequence[device_pb2.DeviceEvent]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SortPlan:
    """Destination -> chute, with the exception and hold chutes and the parcels held at
    screening; ``version`` is the desired state's, ``plan_version`` the plan's own (0 = none)."""

    version: int = 0
    rules: dict[str, str] = field(default_factory=dict)
    exception_chute: str = ""
    plan_version: int = 0
    hold_chute: str = ""
    held: frozenset[str] = frozenset()

    @classmethod
    def from_desired(cls, desired: device_pb2.DesiredState, known: Sequence[str]) -> SortPlan:
        """The plan in ``desired``; rules naming unknown chutes are dropped (logged)."""
        chutes = set(known)
        rules = {r.destination: r.chute_id for r in desired.sort_plan if r.chute_id in chutes}
        if len(rules) != len(desired.sort_plan):
            log.warning(
                "sort plan v%d: %d rule(s) name unknown chutes",
                desired.version,
                len(desired.sort_plan) - len(rules),
            )
        exception = desired.exception_chute if desired.exception_chute in chutes else ""
        hold = desired.hold_chute if desired.hold_chute in chutes else ""
        return cls(
            desired.version,
            rules,
            exception,
            plan_version=desired.sort_plan_version,
            hold_chute=hold,
            held=frozenset(desired.held_parcels),
        )


@dataclass(slots=True)
class _InFlight:
    item_id: str
    parcel_id: str
    destination: str
    chute_id: str
    deadline_ms: int
    round: int
    plan_version: int


class SorterController:
    """Sorting decisions for one line.

    Args:
        driver: the line (divert, recirculate, chute sensors).
        settings: timeouts and limits.
        emit: persists and publishes events (the agent's commit).
        clock: time for confirmation deadlines (the agent's clock).
    """

    def __init__(
        self,
        driver: SorterDriver,
        settings: SorterSettings,
        emit: Emit,
        *,
        clock: Clock | None = None,
    ) -> None:
        self._clock: Clock = clock or SystemClock()
        self._driver = driver
        self._settings = settings
        self._emit = emit
        self._plan = SortPlan()
        self._reported_plan = 0
        self.counters = device_pb2.SorterCounters()
        self._in_flight: dict[str, _InFlight] = {}
        self._full: dict[str, bool] = {}
        self._unconfirmed = 0
        self.stalled = False

    @property
    def plan(self) -> SortPlan:
        return self._plan

    @plan.setter
    def plan(self, plan: SortPlan) -> None:
        self._plan = plan

    async def report_plan(self) -> None:
        """Tell the hub which plan version is in force, once per new version (SortPlanApplied)."""
        version = self._plan.plan_version
        if version and version != self._reported_plan:
            self._reported_plan = version
            await self._emit(
                [
                    device_pb2.DeviceEvent(
                        sort_plan_applied=sorting_pb2.SortPlanApplied(plan_version=version)
                    )
                ]
            )

    @property
    def exception_chute(self) -> str:
        """The plan's exception chute, or the configured one until a plan names it."""
        return self.plan.exception_chute or self._settings.exception_chute

    def chutes(self) -> list[device_pb2.ChuteStatus]:
        return [
            device_pb2.ChuteStatus(chute_id=c, full=self._full.get(c, False))
            for c in self._driver.chutes()
        ]

    async def on_inducted(self, item: Inducted) -> None:
        if item.round == 0:
            self.counters.inducted += 1
        if item.parcel_id is None or item.destination is None:
            self.counters.no_reads += 1
            await self._reject(item.item_id, "", Reason.REASON_NO_READ)
            return
        if item.parcel_id in self.plan.held:
            # Held at security screening: never to a delivery chute.
            hold = self.plan.hold_chute or self.exception_chute
            await self._reject(item.item_id, item.parcel_id, Reason.REASON_HELD, chute=hold)
            return
        chute = self.plan.rules.get(item.destination)
        if chute is None:
            await self._reject(item.item_id, item.parcel_id, Reason.REASON_NO_RULE)
            return
        if await self._driver.chute_full(chute):
            if item.round < self._settings.max_recirculations:
                self.counters.recirculated += 1
                await self._driver.recirculate(item.item_id)
                return
            await self._reject(item.item_id, item.parcel_id, Reason.REASON_CHUTE_FULL)
            return
        if len(self._in_flight) >= self._settings.max_in_flight:
            # Too many unconfirmed drops: the line is not keeping up; do not guess.
            await self._reject(item.item_id, item.parcel_id, Reason.REASON_NO_CONFIRMATION)
            return
        deadline = self._clock.now_ms() + round(self._settings.confirm_timeout_s * 1000)
        self._in_flight[item.item_id] = _InFlight(
            item.item_id,
            item.parcel_id,
            item.destination,
            chute,
            deadline,
            item.round,
            self.plan.plan_version,
        )
        await self._driver.divert(item.item_id, chute)

    async def on_confirmed(self, drop: DropConfirmed) -> None:
        pending = self._in_flight.pop(drop.item_id, None)
        if pending is None or drop.chute_id != pending.chute_id:
            if drop.chute_id != self.exception_chute:
                log.warning("unexpected drop confirmation in chute %s", drop.chute_id[:20])
            return
        self.counters.sorted += 1
        self._unconfirmed = 0
        events = []
        if self.stalled:
            self.stalled = False
            events.append(_stall_alarm(False, "drops confirmed again"))
        await self._emit(
            [
                *events,
                device_pb2.DeviceEvent(
                    parcel_sorted=device_pb2.ParcelSorted(
                        parcel_id=pending.parcel_id,
                        destination=pending.destination,
                        chute_id=pending.chute_id,
                        recirculations=pending.round,
                        plan_version=pending.plan_version,
                    )
                ),
            ]
        )

    async def on_chute(self, chute_id: str, full: bool) -> None:
        if self._full.get(chute_id, False) == full:
            return
        self._full[chute_id] = full
        await self._emit(
            [
                device_pb2.DeviceEvent(
                    alarm=device_pb2.AlarmRaised(
                        kind=common_pb2.ALARM_KIND_CHUTE_FULL,
                        detail=f"chute {chute_id} {'full' if full else 'clear'}",
                        active=full,
                    )
                )
            ]
        )

    async def expire(self) -> None:
        """Items whose drop was not confirmed in time go to the exception chute."""
        now = self._clock.now_ms()
        late = [p for p in self._in_flight.values() if p.deadline_ms <= now]
        for pending in late:
            del self._in_flight[pending.item_id]
            await self._reject(pending.item_id, pending.parcel_id, Reason.REASON_NO_CONFIRMATION)
            self._unconfirmed += 1
            if self._unconfirmed >= self._settings.stall_after and not self.stalled:
                self.stalled = True
                await self._emit(
                    [_stall_alarm(True, f"{self._unconfirmed} drops in a row not confirmed")]
                )

    async def _reject(
        self,
        item_id: str,
        parcel_id: str,
        reason: device_pb2.ParcelRejected.Reason.ValueType,
        *,
        chute: str = "",
    ) -> None:
        self.counters.rejected += 1
        chute = chute or self.exception_chute
        try:
            await self._driver.divert(item_id, chute)
        except DriverError as exc:
            # The event still says where it should have gone; the line's own alarms cover the
            # mechanics.
            log.error("divert to the exception chute failed: %s", exc)
        await self._emit(
            [
                device_pb2.DeviceEvent(
                    parcel_rejected=device_pb2.ParcelRejected(
                        parcel_id=parcel_id,
                        reason=reason,
                        chute_id=chute,
                        plan_version=self.plan.plan_version,
                    )
                )
            ]
        )


def _stall_alarm(active: bool, detail: str) -> device_pb2.DeviceEvent:
    return device_pb2.DeviceEvent(
        alarm=device_pb2.AlarmRaised(
            kind=common_pb2.ALARM_KIND_SORTER_STALLED, detail=detail, active=active
        )
    )
