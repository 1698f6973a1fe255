"""A district's day, compressed: the real broker, hub and edge agents, with simulated people.

The day (05:00 to 23:00, simulated) lasts ``day_s`` real seconds. The hub's deadlines are scaled
with it (pickup deadline, reservation hold, reminders, offline detection), so that expiries and
returns happen within the run; everything else (MQTT, SQLite, gRPC) runs at its real speed. Dispatch
announces parcels in batches (a morning wave, then a trickle), couriers deposit them, recipients
pick them up with the code the notifier sent, some never come (the parcel expires and a courier
takes it back), and a few faults happen on schedule: a jammed door, a cabinet that goes offline
for two hours. What happened is read back from the hub (its live events and its lists).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

import grpc

from demo import district_readback as readback
from demo.district_hub import cpu_seconds, hub_process, in_process_hub
from demo.district_people import People, Plan, plan_day
from demo.district_spec import LAYOUT, DayRecord, DistrictSpec
from demo.fleet import raise_fd_limit
from edge.agent import EdgeAgent
from edge.schedule import SharedTicker
from edge.settings import EdgeSettings
from edge.storage import SharedDatabase
from firmware_sim.cabinet import SimulatedCabinet
from firmware_sim.charge_point import SimulatedChargePoint
from hub.broker.embedded import EmbeddedBroker
from hub.broker.mosquitto import Account, BrokerConfig, Mosquitto, new_password
from hub.ocpp.credentials import PILES_FILE, PileCredentials
from hub.settings import SiteSettings
from lockerhub.supervise import stop
from lockerhub.v1 import fleet_pb2, fleet_pb2_grpc

log = logging.getLogger(__name__)

HOUR_S = 3600.0
Progress = Callable[[float, str], None]
_CONNECTING = 16  # cabinets waiting for their first connection at a time (demo.fleet)
PILE_ID = "pile-01"  # the district's one charging pile, at the busiest site (for a pile fault)
# Telemetry samples the whole district sends per real second, at most. A sample per cabinet every
# half simulated hour is 60/s for 200 cabinets on a 120 s day but 600/s for 2,000, which alone
# kept the hub and the agents busy and, late on a crowded machine, had the hub flag thousands of
# cabinets silent; larger districts sample less often instead.
TELEMETRY_PER_S = 30.0
_SILENT_AFTER_SAMPLES = 3  # the hub flags a cabinet silent after this many missed samples
# How long after its relay pulse a door's open still counts as commanded (a cabinet's own default:
# 5 s). A simulated door opens the instant its relay fires, so any delay is the backlog of the one
# process all the district's agents share; on a crowded machine that reached 5 s and turned
# deposits into "forced" opens, the parcel inside but never reported.
_ARM_MS = 30_000


def telemetry_s(spec: DistrictSpec) -> float:
    """Each cabinet's telemetry interval (real seconds)."""
    return max(1.0, spec.hour_s / 2, len(spec.cabinet_sites()) / TELEMETRY_PER_S)


def _sites(spec: DistrictSpec) -> tuple[SiteSettings, ...]:
    # A district about 6 km across, sites on a grid (lat/lon only matter to overflow allocation).
    side = max(1, round(spec.sites**0.5))
    return tuple(
        SiteSettings(
            id=site,
            name=f"District site {i + 1}",
            lat=31.20 + 0.01 * (i // side),
            lon=121.40 + 0.01 * (i % side),
        )
        for i, site in enumerate(spec.site_ids())
    )


def _hub_settings(
    spec: DistrictSpec, broker: Any, hub: Account, workdir: Path, piles: Path | None
) -> dict[str, Any]:
    """``piles``: the pile passwords file (:func:`_provision_pile`); None: no OCPP."""
    h = spec.hour_s / HOUR_S  # real hours per simulated hour
    return {
        "broker": {
            "host": broker.host,
            "port": broker.port,
            "username": hub.username or None,
            "password": hub.password or None,
            "protocol": "5" if isinstance(broker, Mosquitto) else "3.1.1",
        },
        "storage": {"path": str(workdir / "hub.db")},
        "grpc": {"port": 0},
        "metrics": {"port": 0},
        "pickup": {"deadline_h": 10 * h, "hash_iterations": 1000},
        "reservation": {"hold_h": 24 * h},
        "lifecycle": {
            "sweep_interval_s": min(1.0, spec.hour_s / 8),
            "reminder_before_h": 3 * h,
            "offline_after_s": max(5.0, spec.hour_s, _SILENT_AFTER_SAMPLES * telemetry_s(spec)),
        },
        "allocation": {"engine": "smallest_fit"},
        "ocpp": {
            "enabled": piles is not None,
            "port": 0,
            "sessions_path": str(workdir / "ocpp.db"),
            "credentials_path": None if piles is None else str(piles),
            "heartbeat_interval_s": 60,
        },
        "sites": [asdict(s) for s in _sites(spec)],
        # The operator's inventory: each cabinet's births must confirm this layout.
        "devices": [
            {"id": cab, "site": site, "layout": ",".join(f"{size}:{n}" for size, n in LAYOUT)}
            for cab, site in spec.cabinet_sites()
        ],
    }


def _provision_pile(workdir: Path, site: str) -> tuple[Path, str]:
    """The simulated pile's OCPP password (what ``lockerhub devices add-pile`` does): its hash in
    ``workdir/ocpp-piles.json`` for the hub, the password itself returned for the pile only.
    Blocking (PBKDF2, a file write): call from a thread.
    """
    path = workdir / PILES_FILE
    book = PileCredentials()  # a fresh file each run: a new password, no pile of a past run
    password = book.add(PILE_ID, site, rotate=False)
    book.save(path)
    return path, password


def _edge_settings(
    spec: DistrictSpec, cab: str, site: str, account: Account, broker: Any, workdir: Path
) -> EdgeSettings:
    return EdgeSettings.from_mapping(
        {
            "device": {"id": cab, "site": site},
            "broker": {
                "host": broker.host,
                "port": broker.port,
                "username": account.username,
                "password": account.password,
                "protocol": "5" if isinstance(broker, Mosquitto) else "3.1.1",
            },
            "storage": {"path": str(workdir / "cabinets" / f"{cab}.sqlite3")},
            "telemetry": {"interval_s": telemetry_s(spec)},
            "door": {"arm_ms": _ARM_MS},
            "driver": {"compartments": [{"size": s, "count": n} for s, n in LAYOUT]},
        }
    )


class _Cabinet:
    """One cabinet's agent in a task of its own, so that a fault can power it off and on.

    The district's cabinets share one database and one housekeeping ticker, as ``sim fleet``'s do
    (``demo.fleet``): thousands of agents in one process without a thread each.
    """

    def __init__(
        self, settings: EdgeSettings, storage: SharedDatabase, ticker: SharedTicker
    ) -> None:
        self.settings = settings
        self.sim = SimulatedCabinet(settings.driver.compartment_specs())
        self._storage, self._ticker = storage, ticker
        self._task: asyncio.Task[None] | None = None
        self._agent: EdgeAgent | None = None

    async def _serve(self) -> None:
        agent = EdgeAgent(self.settings, self.sim, storage=self._storage, ticker=self._ticker)
        async with agent:
            self._agent = agent
            try:
                await agent.run()
            finally:
                self._agent = None

    async def connected(self) -> None:
        """Return once the agent is connected (its birth acknowledged by the broker)."""
        while self._agent is None or not self._agent.connected.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    def start(self, tg: asyncio.TaskGroup) -> None:
        self._task = tg.create_task(self._serve(), name=f"edge-{self.settings.device.id}")

    @property
    def outbox_depth(self) -> int:
        """Events and results the agent still has to send (0 while powered off)."""
        return 0 if self._agent is None else self._agent.outbox_depth

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await stop(task)


def _use_mosquitto(choice: str) -> bool:
    import shutil

    installed = bool(shutil.which("mosquitto")) or Path("/usr/sbin/mosquitto").exists()
    return choice == "mosquitto" or (choice == "auto" and installed)


async def run_day(spec: DistrictSpec, workdir: Path, progress: Progress) -> DayRecord:
    """Run the district through one compressed day (lengthened for a large district:
    ``DistrictSpec.paced``); return what the hub recorded."""
    spec = spec.paced()
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    record = DayRecord(spec=asdict(spec))
    cab_sites = spec.cabinet_sites()
    raise_fd_limit(len(cab_sites) + 256)  # one MQTT socket per cabinet (the broker inherits it)
    record.cabinets = dict(cab_sites)
    per_cabinet = sum(n for _, n in LAYOUT)
    for _, site in cab_sites:
        record.capacity[site] = record.capacity.get(site, 0) + per_cabinet
    hub_account = Account(username="hub", password=new_password())
    accounts = {"hub": hub_account} | {
        cab: Account(username=cab, password=new_password(), site=site, device=cab)
        for cab, site in cab_sites
    }
    progress(0.0, "starting the broker")
    wall0 = time.monotonic()
    async with AsyncExitStack() as stack:
        if _use_mosquitto(spec.broker):
            broker: Mosquitto | EmbeddedBroker = await stack.enter_async_context(
                Mosquitto(BrokerConfig(workdir=workdir / "broker"), accounts=accounts)
            )
        else:
            broker = await stack.enter_async_context(EmbeddedBroker())
            accounts = {name: Account(username="", password="") for name in accounts}
        plan = plan_day(spec, random.Random(spec.seed))  # noqa: S311  (a load plan)
        piles, pile_password = None, None
        if spec.faults:  # one charging pile at the busiest site, for a pile fault
            piles, pile_password = await asyncio.to_thread(
                _provision_pile, workdir, plan.busiest_site
            )
        settings = _hub_settings(spec, broker, accounts["hub"], workdir, piles)
        opener = hub_process if spec.hub_process else in_process_hub
        hub = await stack.enter_async_context(opener(settings, workdir))
        storage = await stack.enter_async_context(
            SharedDatabase(workdir / "cabinets" / "district.sqlite3")
        )
        ticker = SharedTicker(1.0)
        cabinets = {
            cab: _Cabinet(
                _edge_settings(spec, cab, site, accounts[cab], broker, workdir), storage, ticker
            )
            for cab, site in cab_sites
        }
        channel = await stack.enter_async_context(grpc.aio.insecure_channel(hub.grpc_address))
        async with asyncio.TaskGroup() as tg:
            hub_task = tg.create_task(hub.run(), name="hub")
            ticker_task = tg.create_task(ticker.run(), name="ticker")
            await _start_staggered(list(cabinets.values()), tg)
            await _all_online(channel, len(cabinets), progress)
            pile = None
            if pile_password is not None:
                url = hub.pile_url(plan.busiest_site, PILE_ID)
                pile = await stack.enter_async_context(
                    SimulatedChargePoint(url, PILE_ID, password=pile_password)
                )
            people = People(spec, plan, channel, {c: k.sim for c, k in cabinets.items()}, hub)
            watcher = tg.create_task(readback.watch_alarms(channel, record), name="watch")
            energy0 = await readback.energy_by_site(channel, record.cabinets)
            if spec.idle_s:  # a baseline: the district connected, nobody about
                with _Measure(hub.pid, record, "idle") as m:
                    await asyncio.sleep(spec.idle_s)
                progress(0.0, f"idle baseline {m.seconds:.0f} s")
            measure = _Measure(hub.pid, record, "day").__enter__()
            record.start_ms = _now_ms()
            faults = _faults(spec, plan, cabinets, tg, record, pile, channel)
            day = tg.create_task(people.live(tg, faults), name="day")
            await _clock(spec, progress, day)
            await stop(day)
            record.end_ms = _now_ms()
            measure.__exit__(None, None, None)
            record.refused = people.refused
            record.people = dict(people.tally)
            await readback.settle(lambda: sum(c.outbox_depth for c in cabinets.values()))
            energy1 = await readback.energy_by_site(channel, record.cabinets)
            record.energy_wh = {s: energy1.get(s, 0.0) - energy0.get(s, 0.0) for s in energy1}
            record.parcels = await readback.all_parcels(channel)
            progress(1.0, "stopping")
            watcher.cancel()
            people.stop()
            for cab in cabinets.values():
                await cab.stop()
            ticker_task.cancel()
            hub_task.cancel()
    record.wall_s = time.monotonic() - wall0
    return record


async def _start_staggered(cabinets: list[_Cabinet], tg: asyncio.TaskGroup) -> None:
    """Start the cabinets, at most ``_CONNECTING`` waiting for their first connection (as
    ``demo.fleet`` does): thousands of connects at once time out on a small machine."""
    slots = asyncio.Semaphore(_CONNECTING)

    async def first_connect(cab: _Cabinet) -> None:
        try:
            async with asyncio.timeout(30):
                await cab.connected()
        except TimeoutError:
            log.warning("%s not connected after 30 s; moving on", cab.settings.device.id)
        finally:
            slots.release()

    for cab in cabinets:
        await slots.acquire()
        cab.start(tg)
        tg.create_task(first_connect(cab))


class _Measure:
    """CPU seconds of the hub's process (when it has one) and of this one over a window."""

    def __init__(self, hub_pid: int | None, record: DayRecord, name: str) -> None:
        self.pid, self.record, self.name = hub_pid, record, name
        self.seconds = 0.0

    def __enter__(self) -> _Measure:
        self._t0, self._cpu0 = time.monotonic(), time.process_time()
        self._hub0 = cpu_seconds(self.pid) if self.pid else 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.monotonic() - self._t0
        m = self.record.measures
        m[f"{self.name}_wall_s"] = self.seconds
        m[f"{self.name}_district_cpu_s"] = time.process_time() - self._cpu0
        if self.pid:
            m[f"{self.name}_hub_cpu_s"] = cpu_seconds(self.pid) - self._hub0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _all_online(channel: grpc.aio.Channel, n: int, progress: Progress) -> None:
    fleet = fleet_pb2_grpc.FleetServiceStub(channel)
    deadline = time.monotonic() + 60 + n * 0.5
    while True:
        listed = await fleet.ListCabinets(fleet_pb2.ListCabinetsRequest(), timeout=30)
        online = sum(c.online for c in listed.cabinets)
        progress(0.0, f"cabinets online {online}/{n}")
        if online >= n:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {online} of {n} cabinets came online")
        await asyncio.sleep(0.5)


async def _clock(spec: DistrictSpec, progress: Progress, day: asyncio.Task[None]) -> None:
    t0 = time.monotonic()
    while (elapsed := time.monotonic() - t0) < spec.day_s and not day.done():
        hour = spec.first_hour + elapsed / spec.hour_s
        progress(elapsed / spec.day_s, f"{int(hour):02d}:{int(hour % 1 * 60):02d}")
        await asyncio.sleep(min(0.5, spec.day_s - elapsed))
    if day.done() and day.exception() is not None:
        raise RuntimeError("the simulated day failed") from day.exception()


def _faults(
    spec: DistrictSpec,
    plan: Plan,
    cabinets: dict[str, _Cabinet],
    tg: asyncio.TaskGroup,
    record: DayRecord,
    pile: SimulatedChargePoint | None,
    channel: grpc.aio.Channel,
) -> list[tuple[float, str, Callable[[], Any]]]:
    """(simulated hour, what, action) of the day's faults."""
    if not spec.faults:
        return []
    busy = plan.busiest_site
    at_busy = [c for c, s in record.cabinets.items() if s == busy]
    others = [c for c, s in record.cabinets.items() if s != busy] or at_busy
    offline = cabinets[others[-1]]
    jammed: list[tuple[_Cabinet, str]] = []

    def note(hour: float, what: str) -> None:
        record.faults.append({"hour": hour, "what": what})

    async def jam() -> None:
        # A door with a parcel behind it, so that its recipient meets the jam.
        for cab in (cabinets[c] for c in at_busy):
            full = [c for c, v in cab.sim.state()["compartments"].items() if v["item"]]
            if full:
                await cab.sim.inject_fault("jam", full[0])
                jammed.append((cab, full[0]))
                note(9, f"door of {cab.settings.device.id}/{full[0]} jams")
                # The courier who notices calls the hotline; the remote open finds the jam. On
                # a crowded machine the answer may come late: the day goes on either way.
                try:
                    await fleet_pb2_grpc.FleetServiceStub(channel).OpenCompartment(
                        fleet_pb2.OpenCompartmentRequest(
                            cabinet_id=cab.settings.device.id,
                            compartment_id=full[0],
                            reason="hotline: a door does not open",
                            ttl_seconds=60,
                        ),
                        timeout=90,
                    )
                except grpc.aio.AioRpcError as exc:
                    log.warning("district: the hotline's remote open: %s", exc.code().name)
                return

    async def unjam() -> None:
        for cab, cid in jammed:
            await cab.sim.clear_fault("jam", cid)
            note(15, f"technician frees {cab.settings.device.id}/{cid}")

    async def pile_fault() -> None:
        if pile is not None:
            await pile.fault(1)
            note(14, "pile-01 reports a ground failure")

    async def pile_fixed() -> None:
        if pile is not None:
            await pile.status(1, "Available")
            note(16, "pile-01 is repaired")

    async def power_off() -> None:
        note(11, f"{offline.settings.device.id} loses power")
        await offline.stop()

    async def power_on() -> None:
        note(13, f"{offline.settings.device.id} is back")
        offline.start(tg)

    return [
        (9, "jam", jam),
        (11, "offline", power_off),
        (13, "online", power_on),
        (14, "pile", pile_fault),
        (15, "unjam", unjam),
        (16, "pile ok", pile_fixed),
    ]
