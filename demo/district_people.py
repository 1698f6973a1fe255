"""The people of a simulated district day: dispatch, couriers and recipients, on a plan.

The plan is drawn once from the seed (so a what-if run faces the same parcels); the people act it
out against the running hub (gRPC) and the simulated cabinets, one person at a cabinet at a time.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from demo.district_spec import DistrictSpec
from firmware_sim.cabinet import SimulatedCabinet
from lockerhub.v1 import common_pb2, dispatch_pb2, dispatch_pb2_grpc, fleet_pb2, fleet_pb2_grpc

log = logging.getLogger(__name__)

# Parcel sizes (outer mm, grams): letters, shoe boxes, small appliances.
_SIZES = ((60, 250, 350, 400), (150, 300, 400, 1800), (300, 350, 500, 6000))
_SIZE_WEIGHTS = (0.55, 0.35, 0.10)
_BATCH_H = 0.25  # dispatch announces what is due every quarter of an hour
_NEVER_COLLECTED = 0.08
_LATE_COURIER = 0.10
_VISITS = 12  # a courier or recipient who cannot open comes back, this many times at most
_REVISIT_H = 0.5  # ... half a simulated hour later
# Real seconds a person waits at the cabinet for a door. The agent answers in milliseconds on an
# idle machine but seconds late on a crowded one (2,000 cabinets in one process): a person who
# left after 2 s made the door open behind them, left open.
_DOOR_WAIT_S = 10.0
# Real seconds after which a stray door (one that opened after its person gave up) is pushed
# shut by the next passer-by: well inside the agent's door-left-open limit (120 s).
_STRAY_SHUT_S = 20.0
_REMOTE_OPEN_WAIT_S = 60.0  # a returns courier waits this long for a remotely opened door


class Codes(Protocol):
    @property
    def codes(self) -> Mapping[str, str]: ...  # parcel id -> pickup code


@dataclass(frozen=True, slots=True)
class PlannedParcel:
    id: str
    site: str
    announce_h: float
    deposit_after_h: float
    dwell_h: float | None  # None: the recipient never comes
    size: tuple[int, int, int, int]
    ewaybill: bool
    reusable: bool


@dataclass(frozen=True, slots=True)
class Plan:
    parcels: tuple[PlannedParcel, ...]
    busiest_site: str


def plan_day(spec: DistrictSpec, rng: random.Random) -> Plan:
    """The day's parcels: a morning wave, a trickle until evening, one site busier than the rest."""
    sites = spec.site_ids()
    weights = [5.0 if i == 0 else rng.uniform(0.7, 1.3) for i in range(len(sites))]
    n = spec.parcels()
    parcels = []
    for i in range(n):
        morning = rng.random() < 0.7
        late = rng.random() < _LATE_COURIER
        parcels.append(
            PlannedParcel(
                id=f"D-{i + 1:06d}",
                site=rng.choices(sites, weights)[0],
                announce_h=rng.uniform(6, 10) if morning else rng.uniform(10, 18),
                deposit_after_h=rng.uniform(4, 7) if late else rng.uniform(0.5, 3.5),
                dwell_h=None
                if rng.random() < _NEVER_COLLECTED
                else min(rng.expovariate(1 / 3.5), 9.5),
                size=rng.choices(_SIZES, _SIZE_WEIGHTS)[0],
                ewaybill=rng.random() < 0.95,
                reusable=rng.random() < 0.25,
            )
        )
    parcels.sort(key=lambda p: p.announce_h)
    return Plan(tuple(parcels), busiest_site=sites[0])


Fault = tuple[float, str, Callable[[], Coroutine[Any, Any, Any]]]


class People:
    """Acts the plan out; ``refused`` collects the announcements the hub could not place."""

    def __init__(
        self,
        spec: DistrictSpec,
        plan: Plan,
        channel: grpc.aio.Channel,
        sims: Mapping[str, SimulatedCabinet],
        codes: Codes,
    ) -> None:
        self.spec = spec
        self.plan = plan
        self.sims = sims
        self.codes = codes
        self.refused: list[dict[str, Any]] = []
        self.mishaps = 0
        # What the people did and met (the report's and the benchmark's check that the day held).
        self.tally: Counter[str] = Counter()
        self._dispatch = dispatch_pb2_grpc.DispatchServiceStub(channel)
        self._fleet = fleet_pb2_grpc.FleetServiceStub(channel)
        self._locks = {cab: asyncio.Lock() for cab in sims}
        self._t0 = 0.0

    def hour(self) -> float:
        return self.spec.first_hour + (time.monotonic() - self._t0) / self.spec.hour_s

    async def _until(self, hour: float) -> None:
        await asyncio.sleep(max(0.0, hour - self.hour()) * self.spec.hour_s)

    def stop(self) -> None:
        """Nothing to do: the day's task group ends every person with it."""

    async def live(self, tg: asyncio.TaskGroup, faults: Sequence[Fault]) -> None:
        """Announce in batches, run the faults on time; each parcel's life is a task."""
        self._t0 = time.monotonic()
        batches: dict[float, list[PlannedParcel]] = {}
        for p in self.plan.parcels:
            batches.setdefault(math.floor(p.announce_h / _BATCH_H) * _BATCH_H, []).append(p)
        agenda: list[tuple[float, int, Callable[[], Coroutine[Any, Any, Any]]]] = [
            (h, 0, _bind(self._announce, batch)) for h, batch in batches.items()
        ]
        agenda += [(h, 1, action) for h, _, action in faults]
        async with asyncio.TaskGroup() as lives:
            self._lives = lives
            for hour, _, action in sorted(agenda, key=lambda a: (a[0], a[1])):
                await self._until(hour)
                # A task each: a slow answer (an announcement, the hotline's remote open waits up
                # to 90 s) must not hold back the rest of the day's agenda.
                lives.create_task(action())

    async def _announce(self, batch: list[PlannedParcel]) -> None:
        request = dispatch_pb2.AnnounceParcelsRequest(
            parcels=[
                dispatch_pb2.ParcelAnnouncement(
                    parcel_id=p.id,
                    dimensions=common_pb2.Dimensions(
                        width_mm=p.size[0], height_mm=p.size[1], depth_mm=p.size[2]
                    ),
                    weight_g=p.size[3],
                    zone=common_pb2.TEMPERATURE_ZONE_AMBIENT,
                    destination_site=p.site,
                    recipient_phone=f"139{int(p.id[2:]):08d}",
                    electronic_waybill=p.ewaybill,
                    reusable_container=p.reusable,
                )
                for p in batch
            ]
        )
        try:
            answer = await self._dispatch.AnnounceParcels(request, timeout=60)
        except grpc.aio.AioRpcError as exc:
            log.warning("district dispatch: %s", exc.code().name)
            return
        planned = {p.id: p for p in batch}
        for outcome in answer.outcomes:
            p = planned[outcome.parcel_id]
            if outcome.accepted:
                self._lives.create_task(self._guarded(p, outcome.cabinet_id))
            else:
                self.refused.append(
                    {"id": p.id, "site": p.site, "hour": self.hour(), "reason": outcome.reason}
                )

    async def _guarded(self, p: PlannedParcel, cabinet: str) -> None:
        try:
            await self._life(p, cabinet)
        except Exception:  # one person's mishap must not end the day: logged, counted
            self.mishaps += 1
            log.exception("district: the journey of a parcel at %s failed", cabinet)

    async def _life(self, p: PlannedParcel, cabinet: str) -> None:
        sim, lock = self.sims.get(cabinet), self._locks.get(cabinet)
        if sim is None or lock is None:
            return
        await asyncio.sleep(p.deposit_after_h * self.spec.hour_s)
        if not await self._deposit(p, sim, lock):
            self.tally["deposit given up"] += 1
            return
        if p.dwell_h is None:
            await self._take_back(p, sim, lock)
            return
        await asyncio.sleep(p.dwell_h * self.spec.hour_s)
        await self._pickup(p, sim, lock)

    async def _deposit(self, p: PlannedParcel, sim: SimulatedCabinet, lock: asyncio.Lock) -> bool:
        """The courier scans until a door opens (offline or jammed: back half an hour later)."""
        for _ in range(_VISITS):
            async with lock:
                await _shut_strays(sim)
                opened = (await sim.courier_deposit(p.id, timeout_s=_DOOR_WAIT_S)).opened
            if opened:
                self.tally["deposited"] += 1
                return True
            self.tally["deposit: no door"] += 1
            self._lives.create_task(self._shut_later(sim, lock))
            await asyncio.sleep(_REVISIT_H * self.spec.hour_s)
        return False

    async def _pickup(self, p: PlannedParcel, sim: SimulatedCabinet, lock: asyncio.Lock) -> None:
        """The recipient types the code the notifier sent (not there yet, a wrong answer or a
        stuck door: back later, until the visits run out)."""
        for _ in range(_VISITS):
            code = self.codes.codes.get(p.id)
            if code is None:
                self.tally["pickup: no code yet"] += 1
                await asyncio.sleep(_REVISIT_H * self.spec.hour_s)
                continue
            async with lock:
                await _shut_strays(sim)
                result = await sim.recipient_pickup(code, timeout_s=_DOOR_WAIT_S)
            if result.opened:
                self.tally["picked up"] += 1
                return
            if result.relay_fired:  # the door is stuck: call the hotline, come back later
                self.tally["pickup: door stuck"] += 1
                await self._hotline(p.id)
                # The remote open may work after all (the door was only slow): nobody waits at it.
                self._lives.create_task(self._shut_later(sim, lock))
                await asyncio.sleep(self.spec.hour_s)
                continue
            self.tally["pickup: no door"] += 1
            self._lives.create_task(self._shut_later(sim, lock))
            await asyncio.sleep(_REVISIT_H * self.spec.hour_s)
        self.tally["pickup given up"] += 1

    async def _shut_later(self, sim: SimulatedCabinet, lock: asyncio.Lock) -> None:
        """A door that opens after its person gave up is pushed shut by the next passer-by."""
        await asyncio.sleep(_STRAY_SHUT_S)
        async with lock:
            if await _shut_strays(sim):
                self.tally["stray door shut"] += 1

    async def _hotline(self, parcel_id: str) -> None:
        """The operator tries a remote open; the cabinet reports the jam (an alarm)."""
        try:
            parcel = await self._dispatch.GetParcel(
                dispatch_pb2.GetParcelRequest(parcel_id=parcel_id), timeout=30
            )
            await self._fleet.OpenCompartment(
                fleet_pb2.OpenCompartmentRequest(
                    cabinet_id=parcel.cabinet_id,
                    compartment_id=parcel.compartment_id,
                    reason="hotline: the recipient's door does not open",
                ),
                timeout=30,
            )
        except grpc.aio.AioRpcError as exc:
            log.info("district hotline: %s", exc.code().name)

    async def _take_back(self, p: PlannedParcel, sim: SimulatedCabinet, lock: asyncio.Lock) -> None:
        """After the deadline the hub expires the parcel; a courier's return round withdraws it."""
        await asyncio.sleep(10.5 * self.spec.hour_s)
        for _ in range(_VISITS):
            try:
                parcel = await self._dispatch.WithdrawParcel(
                    dispatch_pb2.WithdrawParcelRequest(parcel_id=p.id, courier_id="returns"),
                    timeout=30,
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    log.warning("district returns: %s", exc.code().name)
                    return
                await asyncio.sleep(_REVISIT_H * self.spec.hour_s)
                continue
            async with lock:
                taken = await _take_out(sim, parcel.compartment_id)
            self.tally["withdrawn" if taken else "withdraw: no door"] += 1
            if not taken:
                self._lives.create_task(self._shut_later(sim, lock))
            return


async def _shut_strays(sim: SimulatedCabinet) -> int:
    """Close every open door (called holding the cabinet's lock: no one is at any of them)."""
    stray = [cid for cid, c in sim.state()["compartments"].items() if c["door_open"]]
    for cid in stray:
        await sim.close_door(cid)
    return len(stray)


async def _take_out(sim: SimulatedCabinet, cid: str) -> bool:
    """Wait for the remotely opened door, take the parcel, close it; False: it did not open."""
    if not sim.state()["compartments"][cid]["door_open"]:
        before = {c.compartment_id: sim.relay_pulses(c.compartment_id) for c in sim.compartments()}
        result = await sim.wait_relay_open(before, _REMOTE_OPEN_WAIT_S)
        if result.opened != cid:
            return False
    await sim.take_item(cid)
    await sim.close_door(cid)
    return True


def _bind(
    fn: Callable[[list[PlannedParcel]], Awaitable[None]], batch: list[PlannedParcel]
) -> Callable[[], Coroutine[Any, Any, None]]:
    async def run() -> None:
        await fn(batch)

    return run
