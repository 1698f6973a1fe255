"""Three hub processes on one broker and one store, under a fleet's deposits and pickups.

Real processes: three `lockerhub hub` (each its own config: hub id, MQTT client id, notice file;
one shared store), the project's mosquitto; cabinets are MQTT 5 clients that keep each event until
the broker acknowledged it (:class:`LedgerCabinet`). Mid-traffic one hub is killed with SIGKILL
and restarted, then mosquitto is restarted. Counted from the cabinets' ledgers, the store, the
notice files and the broker's retained messages: no event lost, none applied twice, no
compartment given twice, every notice sent once, every retained desired state the newest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import grpc
import psycopg
import pytest

from lockerhub.topics import Kind, Topic
from lockerhub.v1 import common_pb2, device_pb2, dispatch_pb2, dispatch_pb2_grpc
from tests.hub.cabinet import inventory_toml
from tests.hub.test_flow import announcement
from tests.support.broker import BrokerHandle
from tests.support.ledger_cabinet import LedgerCabinet
from tests.support.processes import Proc

SITE = "mh-site"
HUBS = 3


@dataclass(frozen=True)
class Load:
    cabinets: int
    parcels: int
    concurrency: int
    door_events_per_s: float


SHORT = Load(cabinets=4, parcels=48, concurrency=8, door_events_per_s=4)
LONG = Load(cabinets=8, parcels=400, concurrency=16, door_events_per_s=10)


@dataclass
class SharedStore:
    """The hubs' one store, and the test's own reads of it."""

    path: Path
    url: str = ""  # set: PostgreSQL
    server: Any = None  # tests.support.postgres.PostgresServer

    def toml(self) -> str:
        return f'url = "{self.url}"' if self.url else f'path = "{self.path}"'

    def rows(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        if not self.url:
            with contextlib.closing(sqlite3.connect(self.path, timeout=10)) as conn:
                return conn.execute(sql, params).fetchall()
        for _ in range(150):  # wait out the database restart, up to 30 s
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    return [tuple(r) for r in conn.execute(sql.replace("?", "%s").encode(), params)]
            except psycopg.OperationalError:
                time.sleep(0.2)
        raise AssertionError("the test's PostgreSQL did not come back within 30 s")


def hub_config(
    tmp: Path, broker: BrokerHandle, store: SharedStore, index: int, cabinets: list[str]
) -> Path:
    user, password = broker.hub_credentials()
    path = tmp / f"hub-{index}.toml"
    path.write_text(
        f"""
[cluster]
hub_id = "hub-{index}"
lease_s = 3
journal_poll_s = 0.1
resend_grace_s = 2
[broker]
host = "{broker.host}"
port = {broker.port}
username = "{user}"
password = "{password}"
client_id = "mh-hub-{index}"
session_expiry_s = 600
reconnect_min_s = 0.1
reconnect_max_s = 0.5
[storage]
{store.toml()}
[grpc]
port = 0
[metrics]
port = 0
[notify]
path = "{tmp / f"notices-{index}.jsonl"}"
retry_min_s = 0.2
retry_max_s = 1
[[sites]]
id = "{SITE}"
{"".join(inventory_toml(name, SITE) for name in cabinets)}"""
    )
    return path


@dataclass
class Hubs:
    """The hub processes and a gRPC channel to each live one."""

    configs: list[Path]
    procs: dict[int, Proc] = field(default_factory=dict)
    channels: dict[int, grpc.aio.Channel] = field(default_factory=dict)
    in_flight: dict[int, int] = field(default_factory=dict)
    metrics: dict[int, str] = field(default_factory=dict)
    killed: list[tuple[int, Proc]] = field(default_factory=list)

    async def start(self, index: int) -> None:
        proc = Proc(["hub", "--config", str(self.configs[index])])
        ready = await asyncio.to_thread(proc.wait_for, r"hub ready: grpc=(\S+) metrics=(\S+)", 60)
        self.procs[index] = proc
        self.metrics[index] = ready.group(2)
        self.channels[index] = grpc.aio.insecure_channel(ready.group(1))
        self.in_flight[index] = 0

    async def kill(self, index: int) -> None:
        """SIGKILL, once no call of this test is in flight to it (its own work is cut anywhere)."""
        channel = self.channels.pop(index)
        while self.in_flight[index]:
            await asyncio.sleep(0.01)
        proc = self.procs.pop(index)
        proc.kill()
        self.killed.append((index, proc))
        await channel.close()

    @contextlib.asynccontextmanager
    async def dispatch(self) -> contextlib.AbstractAsyncContextManager[object]:  # type: ignore[misc]
        index = random.choice(sorted(self.channels))
        self.in_flight[index] += 1
        try:
            yield dispatch_pb2_grpc.DispatchServiceStub(self.channels[index])
        finally:
            self.in_flight[index] -= 1

    async def close(self, logs: Path) -> list[str]:
        """Stop the hubs; every run's output (a killed one's too) is left in ``logs``."""
        failures = []
        for index, proc in self.procs.items():
            if proc.terminate() != 0:
                failures.append(f"hub-{index}: {proc.output()[-2000:]}")
        for n, (index, proc) in enumerate([*self.killed, *self.procs.items()]):
            (logs / f"hub-{index}.run{n}.log").write_text(proc.output())
        for channel in self.channels.values():
            await channel.close()
        return failures


def events_applied(url: str) -> float:
    """Sum of ``lockerhub_events_applied_total`` on one hub's /metrics."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("lockerhub_events_applied_total{")
    )


def notices(tmp: Path) -> list[dict[str, object]]:
    lines = []
    for path in sorted(tmp.glob("notices-*.jsonl*")):
        for line in path.read_text().splitlines():
            lines.append({**json.loads(line), "file": path.name})
    return lines


async def retained_desired(broker: BrokerHandle, devices: list[str]) -> dict[str, int]:
    """The version of each device's retained DesiredState, read as a new subscriber would."""
    user, password = broker.hub_credentials()
    got: dict[str, int] = {}
    async with aiomqtt.Client(
        broker.host, broker.port, username=user, password=password, identifier="mh-reader"
    ) as client:
        for device in devices:
            await client.subscribe(str(Topic(SITE, device, Kind.DESIRED)), qos=1)
        async with asyncio.timeout(10):
            async for message in client.messages:
                state = device_pb2.DesiredState.FromString(bytes(message.payload))  # type: ignore[arg-type]
                got[Topic.parse(message.topic.value).device] = state.version
                if len(got) == len(devices):
                    break
    return got


async def eventually(check: object, what: str, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(check):  # type: ignore[arg-type]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.2)


async def run_city(tmp: Path, broker: BrokerHandle, store: SharedStore, load: Load) -> None:
    names = [f"MH-{i + 1}" for i in range(load.cabinets)]
    hubs = Hubs([hub_config(tmp, broker, store, i, names) for i in range(HUBS)])
    db_rows = store.rows
    await hubs.start(0)  # the first one migrates the shared store
    await asyncio.gather(*(hubs.start(i) for i in range(1, HUBS)))
    held: dict[tuple[str, str], str] = {}  # compartment -> parcel currently given it
    given_twice: list[str] = []
    killed_mid_traffic: list[int] = []
    faults_at: list[tuple[str, float]] = []  # (fault, time.monotonic() it began)
    restarted: list[str] = []
    done: list[str] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            cabs = {
                n: await stack.enter_async_context(LedgerCabinet(broker, SITE, n)) for n in names
            }
            await eventually(
                lambda: (
                    db_rows("SELECT COUNT(*) FROM devices WHERE online = 1")[0][0] == len(names)
                ),
                "cabinets online",
            )

            def missing() -> dict[str, dict[str, float]]:
                """Acknowledged seqs the store lacks: acked how long after each fault."""
                found = {}
                for name, cab in cabs.items():
                    rows = db_rows("SELECT seq FROM device_events WHERE device = ?", name)
                    for seq in sorted(set(cab.ledger) - {r[0] for r in rows}):
                        at = cab.acked_at[seq]  # seconds after each fault:
                        found[f"{name}#{seq}"] = {f: round(at - t, 2) for f, t in faults_at}
                return found

            async def journey(number: int, gate: asyncio.Semaphore) -> None:
                parcel_id = f"MHP-{number}"
                async with gate:
                    deadline = asyncio.get_running_loop().time() + 60
                    while True:
                        assert asyncio.get_running_loop().time() < deadline, "no compartment"
                        try:
                            async with hubs.dispatch() as stub:
                                resp = await stub.AnnounceParcels(  # type: ignore[attr-defined]
                                    dispatch_pb2.AnnounceParcelsRequest(
                                        parcels=[announcement(parcel_id, SITE)]
                                    )
                                )
                                (outcome,) = resp.outcomes
                                if outcome.reason == "duplicate id":  # a retry that had landed
                                    outcome = await stub.GetParcel(  # type: ignore[attr-defined]
                                        dispatch_pb2.GetParcelRequest(parcel_id=parcel_id)
                                    )
                        except grpc.aio.AioRpcError as exc:
                            # What a client does with UNAVAILABLE: try again (any hub).
                            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                                raise
                            await asyncio.sleep(0.2)
                            continue
                        if outcome.cabinet_id:
                            break
                        await asyncio.sleep(0.2)  # every fitting compartment is taken now
                    where = (outcome.cabinet_id, outcome.compartment_id)
                    previous = held.get(where)
                    if previous is not None:
                        # Free again only once the previous parcel's pickup has committed.
                        (state,) = db_rows("SELECT state FROM parcels WHERE id = ?", previous)
                        if state != ("picked_up",):
                            given_twice.append(f"{where} to {previous} and {parcel_id}")
                    held[where] = parcel_id
                    cab = cabs[outcome.cabinet_id]
                    await cab.event(
                        deposited=device_pb2.Deposited(
                            parcel_id=parcel_id,
                            compartment_id=outcome.compartment_id,
                            courier_id="courier",
                        )
                    )
                    # The recipient comes once told (the notice follows the deposit's commit).
                    await eventually(
                        lambda: any(n["parcel_id"] == parcel_id for n in notices(tmp)),
                        f"notice of {parcel_id}",
                    )
                    await cab.event(
                        picked_up=device_pb2.PickedUp(
                            parcel_id=parcel_id, compartment_id=outcome.compartment_id
                        )
                    )
                    deadline = asyncio.get_running_loop().time() + 60
                    while True:
                        assert asyncio.get_running_loop().time() < deadline, (
                            f"pickup of {parcel_id} never applied; missing: {missing()}"
                        )
                        try:
                            async with hubs.dispatch() as stub:
                                parcel = await stub.GetParcel(  # type: ignore[attr-defined]
                                    dispatch_pb2.GetParcelRequest(parcel_id=parcel_id)
                                )
                        except grpc.aio.AioRpcError as exc:
                            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                                raise
                            await asyncio.sleep(0.2)
                            continue
                        if parcel.state == common_pb2.PARCEL_STATE_PICKED_UP:
                            break
                        await asyncio.sleep(0.1)
                    if held.get(where) == parcel_id:
                        del held[where]
                    done.append(parcel_id)

            async def doors(cab: LedgerCabinet, stop: asyncio.Event) -> None:
                while not stop.is_set():
                    await cab.event(
                        door_changed=device_pb2.DoorChanged(
                            compartment_id="A01", open=cab.seq % 2 == 0, commanded=True
                        )
                    )
                    await asyncio.sleep(len(names) / load.door_events_per_s)

            gate = asyncio.Semaphore(load.concurrency)
            stop = asyncio.Event()
            noise = [asyncio.create_task(doors(c, stop)) for c in cabs.values()]
            flows = [asyncio.create_task(journey(n, gate)) for n in range(load.parcels)]

            async def faults() -> None:
                while len(done) < load.parcels // 3:
                    await asyncio.sleep(0.05)
                before = sum(len(c.ledger) for c in cabs.values())
                faults_at.append(("kill", time.monotonic()))
                await hubs.kill(2)  # SIGKILL mid-traffic
                killed_mid_traffic.append(before)
                await asyncio.sleep(1.0)
                for path in tmp.glob("notices-2.jsonl"):  # what its first run sent
                    path.rename(tmp / "notices-2.jsonl.killed")
                await hubs.start(2)
                if store.server is not None:  # PostgreSQL restarted mid-traffic
                    while len(done) < load.parcels // 2:
                        await asyncio.sleep(0.05)
                    faults_at.append(("pg", time.monotonic()))
                    await asyncio.to_thread(store.server.restart)
                    restarted.append("postgresql")
                while len(done) < 2 * load.parcels // 3:
                    await asyncio.sleep(0.05)
                reconnects = sum(c.reconnects for c in cabs.values())
                faults_at.append(("broker", time.monotonic()))
                await broker.astop()
                await asyncio.sleep(0.5)
                await broker.astart()
                async with asyncio.timeout(30):
                    while sum(c.reconnects for c in cabs.values()) == reconnects:
                        await asyncio.sleep(0.05)  # a cabinet had to re-send over a new connection

            await asyncio.gather(faults(), *flows)
            stop.set()
            await asyncio.gather(*noise)
            assert given_twice == []
            assert len(done) == load.parcels
            assert killed_mid_traffic
            assert restarted == (["postgresql"] if store.server is not None else [])
            assert killed_mid_traffic[0] < sum(len(c.ledger) for c in cabs.values())
            # The broker shared the events out: every hub applied some.
            shares = [await asyncio.to_thread(events_applied, hubs.metrics[i]) for i in (0, 1)]
            assert all(share > 0 for share in shares), shares

            # 0 events lost, 0 applied twice: the ledger of each cabinet is what the store holds.
            def ledgers_applied() -> bool:
                rows = db_rows("SELECT device, COUNT(*) FROM device_events GROUP BY device")
                return dict(rows) == {n: len(c.ledger) for n, c in cabs.items()}  # type: ignore[comparison-overlap]

            try:
                await eventually(ledgers_applied, "every acknowledged event applied")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; missing: {missing()}") from None
            for name, cab in cabs.items():
                rows = db_rows("SELECT seq FROM device_events WHERE device = ? ORDER BY seq", name)
                seqs = [r[0] for r in rows]
                assert seqs == sorted(cab.ledger) == list(range(1, cab.seq + 1)), name
            effects = db_rows(
                "SELECT state, COUNT(*), COUNT(DISTINCT parcel_id) FROM parcel_transitions "
                "WHERE state IN ('deposited', 'picked_up') GROUP BY state",
            )
            assert sorted(effects) == [
                ("deposited", load.parcels, load.parcels),
                ("picked_up", load.parcels, load.parcels),
            ]
            # Every notice sent once: one deposited notice per parcel, each key once (a hub
            # killed between the gateway's answer and its commit may send its key again).
            sent = notices(tmp)
            deposited = [n for n in sent if n["kind"] == "deposited"]
            assert sorted({str(n["parcel_id"]) for n in deposited}) == sorted(done)
            by_key: dict[str, list[str]] = {}
            for n in deposited:
                by_key.setdefault(str(n["key"]), []).append(str(n["file"]))
            assert len(by_key) == load.parcels
            again = {k: f for k, f in by_key.items() if len(f) > 1}
            assert all("notices-2.jsonl.killed" in f for f in again.values()), again
            assert len(again) <= 1, again

            # Every cabinet's retained desired state is its newest version.
            def all_published() -> bool:
                rows = db_rows(
                    "SELECT COUNT(*) FROM desired_state WHERE published_version < version"
                )
                return rows[0][0] == 0

            await eventually(all_published, "desired states published")
            newest = dict(db_rows("SELECT device, version FROM desired_state"))
            assert await retained_desired(broker, names) == {n: newest[n] for n in names}
    finally:
        failures = await hubs.close(tmp)
    assert failures == []


@contextlib.contextmanager
def shared_store(kind: str, tmp: Path) -> Iterator[SharedStore]:
    """A SQLite file, or a PostgreSQL cluster of the test's own (the test restarts it)."""
    if kind == "sqlite":
        yield SharedStore(tmp / "hub.db")
        return
    from tests.support.postgres import running_postgres

    with running_postgres() as server:
        yield SharedStore(tmp / "unused.db", server.create_database("mh"), server)


STORES = ["sqlite", "postgresql"]


@pytest.mark.parametrize("store", STORES)
async def test_three_hubs_one_store_nothing_lost_nothing_twice(
    tmp_path: Path, own_mosquitto: BrokerHandle, store: str
) -> None:
    with shared_store(store, tmp_path) as shared:
        await run_city(tmp_path, own_mosquitto, shared, SHORT)


@pytest.mark.slow
@pytest.mark.parametrize("store", STORES)
async def test_three_hubs_soak(tmp_path: Path, own_mosquitto: BrokerHandle, store: str) -> None:
    with shared_store(store, tmp_path) as shared:
        await run_city(tmp_path, own_mosquitto, shared, LONG)
