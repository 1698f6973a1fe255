"""A fleet of simulated cabinets in one process, each with its own agent and MQTT connection.

Used to load a hub (`lockerhub sim fleet --cabinets N ...`). Accounts: either per-device
credentials from a JSON file ``{"<device id>": {"username": ..., "password": ...}}`` (what the
project's mosquitto with per-device ACLs needs; ``lockerhub devices add`` provisions them), or
one shared username/password (or none) for an open test broker without ACLs. Every cabinet keeps
its own client id, account, boot counter, sequence numbers and outbox.

What the cabinets share, so that 10,000 fit in one process on a small machine (docs/edge.md,
"Fleets"): one SQLite database and one database thread (``edge.storage.SharedDatabase``, the file
``data_dir/fleet.sqlite3``; ``storage="files"`` gives each its own file and thread instead, as a
real cabinet has), and one task for every housekeeping sweep (``edge.schedule.SharedTicker``).
Cabinets connect a bounded number at a time; keepalives and telemetry intervals are jittered so
that pings and samples do not come in waves.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import resource
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.agent import EdgeAgent
from edge.errors import ConfigError
from edge.schedule import SharedTicker
from edge.settings import EdgeSettings
from edge.storage import SharedDatabase, StoreProvider
from firmware_sim.cabinet import SimulatedCabinet
from firmware_sim.errors import SimError
from lockerhub.supervise import stop

log = logging.getLogger(__name__)

MAX_CABINETS = 10_000
STORAGE_MODES = ("shared", "files")
# File descriptors per cabinet: its MQTT socket; with its own database file, that file, its -wal
# and its -shm too.
_FDS = {"shared": 1, "files": 4}
_FDS_SPARE = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetSpec:
    """What to simulate and where to connect."""

    cabinets: int
    host: str = "127.0.0.1"
    port: int = 1883
    site: str = "fleet-site"
    prefix: str = "fleet"
    data_dir: Path = Path("var/fleet")
    credentials: Mapping[str, tuple[str, str]] | None = None
    username: str = ""
    password: str = field(default="", repr=False)
    telemetry_s: float = 60.0
    # Forced open/close pairs per cabinet per second (door events and alarms), 0 = presence and
    # telemetry only.
    activity_per_s: float = 0.0
    seed: int | None = None
    storage: str = "shared"
    # Cabinets connecting at the same time (each waits for its birth to be acknowledged).
    connect_concurrency: int = 16
    # Each cabinet's keepalive and telemetry interval are drawn within +-jitter of the nominal.
    keepalive_s: int = 60
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not 1 <= self.cabinets <= MAX_CABINETS:
            raise SimError(f"--cabinets must be 1-{MAX_CABINETS}")
        if not 0 <= self.activity_per_s <= 100:
            raise SimError("--activity must be 0-100 per cabinet per second")
        if self.storage not in STORAGE_MODES:
            raise SimError(f"--storage must be one of {', '.join(STORAGE_MODES)}")
        if not 1 <= self.connect_concurrency <= 10_000:
            raise SimError("--connect-concurrency must be 1-10000")
        if not 10 <= self.keepalive_s <= 3600:
            raise SimError("--keepalive must be 10-3600 seconds")
        if not 0 <= self.jitter <= 0.5:
            raise SimError("jitter must be 0-0.5")
        if self.credentials is not None:
            missing = [d for d in self.device_ids() if d not in self.credentials]
            if missing:
                raise SimError(
                    f"credentials file has no account for {len(missing)} device(s), "
                    f"e.g. {missing[0]}"
                )

    def device_ids(self) -> list[str]:
        width = max(4, len(str(self.cabinets)))
        return [f"{self.prefix}-{i:0{width}d}" for i in range(1, self.cabinets + 1)]


def load_credentials(path: Path) -> dict[str, tuple[str, str]]:
    """Read a credentials JSON file (raises SimError naming what is wrong, never the secrets)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SimError(f"cannot read credentials file {path}: {type(exc).__name__}") from exc
    if not isinstance(data, dict):
        raise SimError("credentials file: expected an object of device id -> account")
    out: dict[str, tuple[str, str]] = {}
    for device, account in data.items():
        if (
            not isinstance(account, dict)
            or not isinstance(account.get("username"), str)
            or not isinstance(account.get("password"), str)
        ):
            raise SimError(f"credentials file: {str(device)[:40]!r} needs username and password")
        out[str(device)] = (account["username"], account["password"])
    return out


def raise_fd_limit(needed: int) -> int:
    """Raise this process's open-file soft limit to the hard limit; returns the soft limit.

    Raises:
        SimError: even the hard limit is below ``needed`` (it names both and what to do).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SimError(
            f"the fleet needs about {needed} open files but the hard limit is {hard} "
            "(raise it: ulimit -Hn, LimitNOFILE= in a unit, or run fewer cabinets)"
        )
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return int(soft)


@dataclass(slots=True)
class FleetStats:
    connected: int = 0
    actions: int = 0
    # Seconds from the first connect attempt to the last cabinet's birth (None: not yet).
    connect_s: float | None = None


class Fleet:
    """``async with Fleet(spec) as fleet: await fleet.run()``; agents and sims in one process."""

    def __init__(self, spec: FleetSpec) -> None:
        self.spec = spec
        self.agents: list[EdgeAgent] = []
        self.sims: list[SimulatedCabinet] = []
        self.stats = FleetStats()
        self.ticker = SharedTicker(1.0)
        self.shared: SharedDatabase | None = None
        self._stack: AsyncExitStack | None = None
        self._rng = random.Random(spec.seed)  # noqa: S311 - load pattern, not cryptography

    def _jittered(self, nominal: float) -> float:
        return nominal * (1 + self._rng.uniform(-self.spec.jitter, self.spec.jitter))

    def _settings(self, device: str) -> EdgeSettings:
        s = self.spec
        user, password = (
            s.credentials[device] if s.credentials is not None else (s.username, s.password)
        )
        mapping: dict[str, Any] = {
            "device": {"id": device, "site": s.site},
            "broker": {
                "host": s.host,
                "port": s.port,
                "username": user,
                "password": password,
                "reconnect_min_s": 0.5,
                "reconnect_max_s": 30.0,
                "keepalive_s": round(self._jittered(s.keepalive_s)),
            },
            "storage": {"path": str(s.data_dir / f"{device}.sqlite3")},
            "telemetry": {"interval_s": self._jittered(s.telemetry_s)},
            "driver": {"compartments": [{"size": "S", "count": 6}, {"size": "M", "count": 4}]},
        }
        try:
            return EdgeSettings.from_mapping(mapping)
        except ConfigError as exc:
            raise SimError(str(exc)) from exc

    async def __aenter__(self) -> Fleet:
        spec = self.spec
        raise_fd_limit(spec.cabinets * _FDS[spec.storage] + _FDS_SPARE)
        stack = AsyncExitStack()
        try:
            storage: StoreProvider | None = None
            if spec.storage == "shared":
                await asyncio.to_thread(spec.data_dir.mkdir, parents=True, exist_ok=True)
                storage = self.shared = await stack.enter_async_context(
                    SharedDatabase(spec.data_dir / "fleet.sqlite3")
                )
            for device in spec.device_ids():
                settings = self._settings(device)
                sim = SimulatedCabinet(settings.driver.compartment_specs())
                agent = EdgeAgent(settings, sim, storage=storage, ticker=self.ticker)
                self.agents.append(await stack.enter_async_context(agent))
                self.sims.append(sim)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc: object) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    def connected(self) -> int:
        return sum(a.connected.is_set() for a in self.agents)

    async def backlog(self) -> tuple[int, float | None]:
        """Entries waiting in the outboxes, and the oldest waiting event's age in seconds (None:
        no event waiting, or not known: cabinets with files of their own are not asked)."""
        if self.shared is None:
            return sum(a.outbox_depth for a in self.agents), None
        depth, oldest_ms = await self.shared.backlog()
        if oldest_ms is None:
            return depth, None
        return depth, max(0.0, time.time() - oldest_ms / 1000)

    async def run(self, *, on_all_connected: Callable[[int], None] | None = None) -> None:
        """Run every agent (and the activity) until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.ticker.run(), name="fleet-ticker")
            tg.create_task(self._start(tg), name="fleet-start")
            if self.spec.activity_per_s > 0:
                tg.create_task(self._activity())
            tg.create_task(self._watch(on_all_connected))

    async def _start(self, tg: asyncio.TaskGroup) -> None:
        """Start the agents, at most ``connect_concurrency`` waiting for their first connect.

        A cabinet that does not connect within its slot's time keeps trying on its own backoff;
        the slot moves on, so one unreachable account does not hold the others back.
        """
        slots = asyncio.Semaphore(self.spec.connect_concurrency)
        t0 = asyncio.get_running_loop().time()

        async def first_connect(agent: EdgeAgent) -> None:
            try:
                async with asyncio.timeout(30):
                    await agent.connected.wait()
            except TimeoutError:
                log.warning("%s not connected after 30 s; moving on", agent.settings.device.id)
            finally:
                slots.release()

        waiting: set[asyncio.Task[None]] = set()
        for agent in self.agents:
            await slots.acquire()
            tg.create_task(agent.run(), name=f"agent-{agent.settings.device.id}")
            task = tg.create_task(first_connect(agent))
            waiting.add(task)
            task.add_done_callback(waiting.discard)
        while waiting:
            await asyncio.wait(set(waiting))
        self.stats.connect_s = asyncio.get_running_loop().time() - t0

    async def _watch(self, on_all_connected: Callable[[int], None] | None) -> None:
        announced = False
        while True:
            self.stats.connected = self.connected()
            started = self.stats.connect_s is not None
            if not announced and started and self.stats.connected == len(self.agents):
                announced = True
                if on_all_connected is not None:
                    on_all_connected(self.stats.connected)
            await asyncio.sleep(0.5)

    async def _activity(self) -> None:
        total_rate = self.spec.activity_per_s * len(self.sims)
        while True:
            await asyncio.sleep(self._rng.expovariate(total_rate))
            sim = self._rng.choice(self.sims)
            cid = self._rng.choice(sim.compartments()).compartment_id
            await sim.force_open(cid)
            await sim.close_door(cid)
            self.stats.actions += 1


async def _report(fleet: Fleet, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        depth, age = await fleet.backlog()
        oldest = "-" if age is None else f"{age:.1f} s"
        print(
            f"fleet: {fleet.connected()}/{len(fleet.agents)} connected, outbox {depth} entries, "
            f"oldest event waiting {oldest}, {fleet.stats.actions} actions",
            flush=True,
        )


async def serve_fleet(
    spec: FleetSpec, *, duration_s: float | None = None, report_s: float | None = None
) -> FleetStats:
    """Run a fleet, print when all are connected (and every ``report_s`` how its outboxes are
    doing), stop after ``duration_s`` (None: forever)."""
    async with Fleet(spec) as fleet:

        def connected(n: int) -> None:
            took = fleet.stats.connect_s
            after = "" if took is None else f" in {took:.1f} s"
            print(f"fleet: {n} cabinets connected{after}", flush=True)

        task = asyncio.create_task(fleet.run(on_all_connected=connected))
        reporter = None if report_s is None else asyncio.create_task(_report(fleet, report_s))
        try:
            await asyncio.wait({task}, timeout=duration_s)
        finally:
            for running in (reporter, task):
                if running is not None:
                    await stop(running)
        return fleet.stats
