"""Sort plans: a line's destination-to-chute map, versioned, retained in its desired state.

A plan comes from an operator (``SortingService.SetSortPlan``) or from a route plan
(``PlanRoutes`` gives every provisioned line of the hub site the routes' map, keeping the line's
exception and hold chutes). Each change is a new version of the line's plan and of its desired
state; the line reports the version it applied (``SortPlanApplied``) and the version each sort
decision was taken with (``ParcelSorted.plan_version``). A version the hub never sent to that line
is refused; a sort against an older version, to another chute than the current plan's, or of a
parcel the plan has no chute for is a sort exception: recorded, counted and alarmed on the line
(the parcel is still SORTED: it is physically in that chute, and the alarm says to move it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hub.devices import desired
from hub.devices.alarms import AlarmService
from hub.devices.desired import DesiredStates
from hub.errors import Dropped, FailedPrecondition, InvalidArgument, NotFound
from hub.metrics.catalogue import HubMetrics
from hub.models import ParcelRecord
from hub.store import Store, Tx
from hub.store.repo import devices as devices_repo
from hub.store.repo import sorting as repo
from hub.store.repo.sorting import PlanRow
from lockerhub.clock import Clock
from lockerhub.topics import Topic
from lockerhub.v1 import device_pb2, sorting_pb2

MAX_RULES = 10_000


@dataclass(frozen=True, slots=True)
class PlanInfo:
    plan: PlanRow
    applied_version: int


def check_rules(
    rules: Sequence[tuple[str, str]], exception_chute: str, hold_chute: str
) -> tuple[tuple[str, str], ...]:
    """Validated rules (each destination once, at most MAX_RULES).

    Raises:
        InvalidArgument: a duplicate destination, too many rules, or an exception chute that is
            also a destination's chute.
    """
    if len(rules) > MAX_RULES:
        raise InvalidArgument(f"rules: at most {MAX_RULES}")
    seen: dict[str, str] = {}
    for destination, chute in rules:
        if destination in seen:
            raise InvalidArgument(f"rules: destination {destination!r} appears twice")
        seen[destination] = chute
    chutes = set(seen.values())
    for name, chute in (("exception_chute", exception_chute), ("hold_chute", hold_chute)):
        if chute and chute in chutes:
            raise InvalidArgument(f"{name}: {chute!r} is also a destination's chute")
    return tuple(sorted(seen.items()))


class SortPlans:
    """Sort plans per line, and the checks of what the lines report."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        metrics: HubMetrics,
        desired_states: DesiredStates,
        alarms: AlarmService,
    ) -> None:
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._desired = desired_states
        self._alarms = alarms

    async def set_plan(
        self,
        line: str,
        rules: Sequence[tuple[str, str]],
        *,
        exception_chute: str,
        hold_chute: str,
        actor: str,
    ) -> PlanInfo:
        """Store a new version of ``line``'s plan and publish it in the line's desired state.

        Raises:
            NotFound: no such device.
            FailedPrecondition: the device is not a provisioned sorting line.
            InvalidArgument: see :func:`check_rules`.
        """
        checked = check_rules(rules, exception_chute, hold_chute)
        async with self._store.transaction() as tx:
            site = await self._line_site(tx, line)
            row = await self._add(tx, line, site, checked, exception_chute, hold_chute, actor)
            applied = await repo.applied_version(tx, line)
        self._metrics.sorting.sort_plans.labels(site).inc()
        self._desired.wake()
        return PlanInfo(row, applied)

    async def apply_route_plan(
        self, hub_site: str, rules: Sequence[tuple[str, str]], *, actor: str
    ) -> list[str]:
        """Give every provisioned line at ``hub_site`` the route plan's map (keeping each line's
        exception and hold chutes); returns the lines."""
        checked = check_rules(rules, "", "")
        async with self._store.transaction() as tx:
            lines = await repo.lines_at(tx, hub_site)
            for line in lines:
                old = await repo.plan(tx, line)
                exception = old.exception_chute if old else ""
                hold = old.hold_chute if old else ""
                kept = tuple(r for r in checked if r[1] not in (exception, hold))
                await self._add(tx, line, hub_site, kept, exception, hold, actor)
        for _ in lines:
            self._metrics.sorting.sort_plans.labels(hub_site).inc()
        if lines:
            self._desired.wake()
        return lines

    async def get(self, line: str) -> PlanInfo:
        """Raises NotFound (no such line) or FailedPrecondition (no plan yet)."""
        async with self._store.read() as tx:
            await self._line_site(tx, line)
            row = await repo.plan(tx, line)
            if row is None:
                raise FailedPrecondition(f"line {line!r} has no sort plan yet")
            return PlanInfo(row, await repo.applied_version(tx, line))

    async def _line_site(self, tx: Tx, line: str) -> str:
        device = await devices_repo.get_device(tx, line)
        if device is None:
            raise NotFound(f"device {line!r} not found")
        if device.kind != "sorting_line" or not device.provisioned:
            raise FailedPrecondition(f"{line!r} is not a provisioned sorting line")
        return device.site

    async def _add(
        self,
        tx: Tx,
        line: str,
        site: str,
        rules: tuple[tuple[str, str], ...],
        exception_chute: str,
        hold_chute: str,
        actor: str,
    ) -> PlanRow:
        now = self._clock.now_ms()
        version = await repo.add_plan(
            tx, line, site, rules, exception_chute, hold_chute, now_ms=now, actor=actor
        )
        await desired.mark(tx, line, now)
        return PlanRow(line, version, rules, exception_chute, hold_chute, now, actor)

    # -- what lines report (inside the ingest transaction) ---------------------------------

    async def applied(self, tx: Tx, topic: Topic, ev: sorting_pb2.SortPlanApplied) -> None:
        """The line applied ``ev.plan_version``.

        Raises:
            Dropped: ``unknown_plan_version`` - a version the hub never sent to this line.
        """
        if await repo.plan(tx, topic.device, ev.plan_version) is None:
            raise Dropped(
                "unknown_plan_version",
                f"{topic.device} reported plan version {ev.plan_version}, never sent to it",
            )
        await repo.set_applied(tx, topic.device, ev.plan_version, self._clock.now_ms())

    async def check_sorted(
        self, tx: Tx, topic: Topic, ev: device_pb2.ParcelSorted, parcel: ParcelRecord
    ) -> str:
        """The sort exception of this decision ('' when none), recorded in ``tx``.

        Raises:
            Dropped: ``held`` (a parcel held at screening) or ``unknown_plan_version``.
        """
        if await repo.is_held(tx, parcel.parcel_id):
            raise Dropped("held", f"{topic.device} sorted a parcel held at screening")
        used = None
        if ev.plan_version:
            used = await repo.plan(tx, topic.device, ev.plan_version)
            if used is None:
                raise Dropped(
                    "unknown_plan_version",
                    f"{topic.device} sorted with plan version {ev.plan_version}, never sent to it",
                )
        current = await repo.plan(tx, topic.device)
        expected = dict(current.rules).get(parcel.site, "") if current else ""
        # The cause first: a decision taken with an older plan is stale even when the chute
        # differs only because the plan changed.
        if not expected:
            reason = "no_chute"
        elif current is not None and ev.plan_version < current.version:
            reason = "stale_plan"
        elif ev.chute_id != expected:
            reason = "wrong_chute"
        else:
            return ""
        await repo.add_exception(
            tx,
            line=topic.device,
            site=topic.site,
            parcel_id=parcel.parcel_id,
            reason=reason,
            plan_version=ev.plan_version,
            chute=ev.chute_id,
            expected_chute=expected,
            now_ms=self._clock.now_ms(),
        )
        await self._alarms.raise_(
            tx,
            site=topic.site,
            device=topic.device,
            kind="sort_exception",
            detail=f"{reason}: chute {ev.chute_id}, plan v{ev.plan_version}",
            actor=f"device:{topic.device}",
        )
        return reason
