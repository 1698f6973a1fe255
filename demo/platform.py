"""``lockerhub demo``: the whole platform in one process on embedded defaults.

A broker (the project's mosquitto config on a free port; without a mosquitto binary, an embedded
pure-Python MQTT 3.1.1 broker), the hub on SQLite, and simulated cabinets at three sites, each with
its own device account and edge agent. Unless ``--quiet``, a simulated
dispatcher announces a parcel every few seconds; a simulated courier deposits it and the recipient
picks it up with the code from the notifier, so that metrics and the event history move.

The console shows one line per parcel step and per alarm; the agents' and hub's log lines go to
``demo.log`` in the work directory (``--verbose`` shows them too). The work directory also holds
the files ``lockerhub sim`` reads to find a cabinet's control port, a parcel's cabinet and its
pickup code (see ``demo.workdir``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import shlex
import shutil
import signal
import socket
import sys
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path

import grpc

from demo import workdir as files
from demo.console import chatter_to_file, follow_events
from edge.agent import EdgeAgent
from edge.settings import (
    BrokerSettings as EdgeBrokerSettings,
)
from edge.settings import (
    DeviceSettings,
    EdgeSettings,
)
from edge.settings import (
    StorageSettings as EdgeStorageSettings,
)
from firmware_sim.cabinet import SimulatedCabinet
from firmware_sim.control import ControlServer
from hub.app import HubApp
from hub.broker import embedded as embedded_broker
from hub.broker.embedded import EmbeddedBroker
from hub.broker.mosquitto import Account, BrokerConfig, Mosquitto, new_password
from hub.errors import BrokerError
from hub.settings import (
    BrokerSettings,
    DeviceInventorySettings,
    GrpcSettings,
    HubSettings,
    MetricsSettings,
    NotifySettings,
    SiteSettings,
    StorageSettings,
)
from lockerhub.v1 import common_pb2, dispatch_pb2, dispatch_pb2_grpc

log = logging.getLogger(__name__)

DEMO_SITES = (
    SiteSettings(id="xuhui-campus", name="Xuhui university campus", lat=31.1950, lon=121.4320),
    SiteSettings(id="pudong-office", name="Pudong office park", lat=31.2240, lon=121.5440),
    SiteSettings(id="jingan-metro", name="Jing'an metro station", lat=31.2230, lon=121.4480),
)
# Every demo cabinet's layout: the edge's default [[driver.compartments]] profile.
DEMO_LAYOUT = "S:6,M:4,L:2"
# Parcel sizes the simulated dispatcher announces (outer mm, grams): letters to shoe boxes.
_PARCELS = ((60, 250, 350, 400), (150, 300, 400, 1800), (300, 350, 500, 6000))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` subcommand."""
    p = subparsers.add_parser(
        "demo",
        help="run broker, hub and simulated cabinets in one process (what `make run` starts)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--cabinets", type=_positive, default=20, help="simulated cabinets (20)")
    p.add_argument(
        "--workdir", type=Path, default=files.DEFAULT_WORKDIR, help="state and files (var/demo)"
    )
    p.add_argument("--mqtt-port", type=_port, default=1883, help="MQTT port (1883; 0 = any)")
    p.add_argument("--grpc-port", type=_port, default=50051, help="gRPC port (50051; 0 = any)")
    p.add_argument("--metrics-port", type=_port, default=9108, help="metrics port (9108; 0 = any)")
    p.add_argument("--traffic-every", type=float, default=5.0, help="seconds between parcels")
    p.add_argument("--quiet", action="store_true", help="no simulated parcel traffic")
    p.add_argument(
        "--verbose", action="store_true", help="also show every log line (always in demo.log)"
    )
    p.add_argument(
        "--broker",
        choices=("auto", "mosquitto", "embedded"),
        default="auto",
        help="mosquitto when installed (auto), or the embedded pure-Python broker",
    )
    p.set_defaults(func=_run)


def _positive(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError("must be between 1 and 1000")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be a port number (0-65535)")
    return value


def _run(args: argparse.Namespace) -> int:
    try:
        asyncio.run(run_demo(args))
    except BrokerError as exc:
        print(f"error: {exc}")
        return 1
    return 0


def _free_or(port: int) -> int:
    """``port`` when it is free, else 0 (any): a second demo must not fail on a busy port."""
    if port == 0:
        return 0
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


async def run_demo(args: argparse.Namespace) -> None:
    """Run the demo until SIGINT/SIGTERM."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    workdir: Path = args.workdir.resolve()
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    hub_account = Account(username="hub", password=new_password())
    cabinets = [
        (f"cab-{i + 1:02d}", DEMO_SITES[i % len(DEMO_SITES)].id) for i in range(args.cabinets)
    ]
    accounts = {hub_account.username: hub_account} | {
        cab: Account(username=cab, password=new_password(), site=site, device=cab)
        for cab, site in cabinets
    }
    mqtt_port = _free_or(args.mqtt_port)
    try:
        async with AsyncExitStack() as stack:
            stack.enter_context(chatter_to_file(workdir / files.LOG, verbose=args.verbose))
            if _use_mosquitto(args.broker):
                broker: Mosquitto | EmbeddedBroker = await stack.enter_async_context(
                    Mosquitto(
                        BrokerConfig(workdir=workdir / "broker", port=mqtt_port), accounts=accounts
                    )
                )
                protocol, broker_note = "5", "mosquitto, per-device accounts and ACLs"
            else:
                broker = await stack.enter_async_context(EmbeddedBroker(port=mqtt_port))
                protocol = embedded_broker.PROTOCOL
                broker_note = "embedded amqtt, MQTT 3.1.1, NO per-device ACLs: for trying only"
                accounts = {name: Account(username="", password="") for name in accounts}
            settings = HubSettings(
                broker=BrokerSettings(
                    host=broker.host,
                    port=broker.port,
                    username=accounts["hub"].username or None,
                    password=accounts["hub"].password or None,
                    protocol=protocol,
                ),
                storage=StorageSettings(path=workdir / "hub.db"),
                grpc=GrpcSettings(port=_free_or(args.grpc_port)),
                metrics=MetricsSettings(port=_free_or(args.metrics_port)),
                notify=NotifySettings(path=workdir / files.NOTIFICATIONS),
                sites=DEMO_SITES,
                # The operator's inventory: each cabinet's births must confirm this layout (the
                # simulated edge agents run the default [driver] profile, the same groups).
                devices=tuple(
                    DeviceInventorySettings(id=cab, site=site, layout=DEMO_LAYOUT)
                    for cab, site in cabinets
                ),
            )
            hub = await stack.enter_async_context(HubApp(settings))
            sims: dict[str, SimulatedCabinet] = {}
            agents: list[EdgeAgent] = []
            controls: dict[str, str] = {}
            for cab, site in cabinets:
                edge_settings = _edge_settings(cab, site, accounts[cab], broker, protocol, workdir)
                sim = SimulatedCabinet(edge_settings.driver.compartment_specs())
                sims[cab] = sim
                agents.append(await stack.enter_async_context(EdgeAgent(edge_settings, sim)))
                control = await stack.enter_async_context(ControlServer(sim))
                controls[cab] = "{}:{}".format(*control.address)
            await asyncio.to_thread(files.write_json, workdir / files.CONTROLS, controls)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(hub.run(), name="hub")
                parcel = await _unused_parcel_id(hub.grpc_address)
                _banner(
                    hub,
                    f"mqtt://{broker.host}:{broker.port} ({broker_note})",
                    cabinets,
                    workdir,
                    parcel,
                )
                tg.create_task(follow_events(hub.grpc_address, workdir), name="console")
                for agent in agents:
                    tg.create_task(agent.run(), name=f"edge-{agent.settings.device.id}")
                if not args.quiet:
                    tg.create_task(
                        _traffic(hub, sims, cabinets, settings, args.traffic_every),
                        name="traffic",
                    )
    except asyncio.CancelledError:
        print("\ndemo stopped.", flush=True)


def _use_mosquitto(choice: str) -> bool:
    installed = bool(shutil.which("mosquitto")) or Path("/usr/sbin/mosquitto").exists()
    if choice == "mosquitto" and not installed:
        raise BrokerError("mosquitto is not installed: `apt-get install mosquitto`")
    return choice == "mosquitto" or (choice == "auto" and installed)


def _edge_settings(
    cab: str,
    site: str,
    account: Account,
    broker: Mosquitto | EmbeddedBroker,
    protocol: str,
    workdir: Path,
) -> EdgeSettings:
    base = EdgeSettings(device=DeviceSettings(id=cab, site=site))
    return replace(
        base,
        broker=EdgeBrokerSettings(
            host=broker.host,
            port=broker.port,
            username=account.username,
            password=account.password,
            protocol=protocol,
        ),
        storage=EdgeStorageSettings(path=workdir / "cabinets" / f"{cab}.db"),
    )


_PARCEL_ARGS = "--size 60x300x200 --weight-g 900 --phone 13812345678"


def program() -> str:
    """How to type the running ``lockerhub`` program in another terminal of the same directory."""
    argv0 = sys.argv[0]
    if argv0.endswith(".py") or not argv0:  # ``python -m lockerhub.cli`` or an embedding
        return f"{shlex.quote(sys.executable)} -m lockerhub.cli"
    name = os.path.basename(argv0)
    on_path = shutil.which(name)
    if on_path and os.path.realpath(on_path) == os.path.realpath(argv0):
        return name
    return shlex.quote(argv0)


async def _unused_parcel_id(grpc_address: str) -> str:
    """DEMO-1, or the first DEMO-n this work directory's hub has not seen (a second run)."""
    async with grpc.aio.insecure_channel(grpc_address) as channel:
        dispatch = dispatch_pb2_grpc.DispatchServiceStub(channel)
        for n in range(1, 1000):
            try:
                await dispatch.GetParcel(
                    dispatch_pb2.GetParcelRequest(parcel_id=f"DEMO-{n}"), timeout=5
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    return f"DEMO-{n}"
                raise
    return "DEMO-1000"


def _banner(
    hub: HubApp, broker: str, cabinets: list[tuple[str, str]], workdir: Path, parcel: str
) -> None:
    exe = program()
    ops = f"{exe} ops --target {hub.grpc_address}"
    sim = f"{exe} sim"
    where = ""
    if workdir != files.DEFAULT_WORKDIR.resolve():
        where = f" --demo-dir {shlex.quote(str(workdir))}"
    site = cabinets[0][1]
    print(
        f"""
lockerhub demo is running: {len(cabinets)} simulated cabinets at {len(DEMO_SITES)} sites.
  broker   {broker}
  gRPC     {hub.grpc_address} (operator API; the demo runs it WITHOUT authentication)
  metrics  {hub.metrics_url}
  files    {workdir} (controls.json, parcels.json, notifications.jsonl, demo.log)

Try, in another terminal from this directory:
  # the cabinets, then announce a parcel: the hub picks a cabinet at the site and reserves it
  {ops} cabinets
  {ops} announce --parcel {parcel} --site {site} {_PARCEL_ARGS}
  {ops} parcel {parcel}
  # be the courier at the cabinet holding the reservation (found in parcels.json)
  {sim} deposit{where} --parcel {parcel}
  # be the recipient: the pickup code is read from notifications.jsonl (the stand-in for SMS)
  {sim} pickup{where} --parcel {parcel}
  {ops} parcel {parcel}

Also: `{sim} state{where} --cabinet {cabinets[0][0]}`, `{ops} watch`, `{ops} alarms`.
Below: one line per parcel step and per alarm; everything else goes to {files.LOG}.
Ctrl-C stops everything.
""",
        flush=True,
    )


async def _traffic(
    hub: HubApp,
    sims: dict[str, SimulatedCabinet],
    cabinets: list[tuple[str, str]],
    settings: HubSettings,
    every_s: float,
) -> None:
    """A dispatcher, couriers and recipients: one parcel through its whole journey per tick."""
    rng = random.Random(7)  # noqa: S311  (demo traffic, not security)
    async with grpc.aio.insecure_channel(hub.grpc_address) as channel:
        dispatch = dispatch_pb2_grpc.DispatchServiceStub(channel)
        n = 0
        async with asyncio.TaskGroup() as tg:
            while True:
                await asyncio.sleep(every_s)
                n += 1
                w, h, d, g = rng.choice(_PARCELS)
                site = rng.choice(DEMO_SITES).id
                parcel = dispatch_pb2.ParcelAnnouncement(
                    parcel_id=f"SIM-{n:06d}",
                    dimensions=common_pb2.Dimensions(width_mm=w, height_mm=h, depth_mm=d),
                    weight_g=g,
                    zone=common_pb2.TEMPERATURE_ZONE_AMBIENT,
                    destination_site=site,
                    recipient_phone=f"139{rng.randrange(10**8):08d}",
                    electronic_waybill=rng.random() < 0.97,
                    reusable_container=rng.random() < 0.3,
                )
                try:
                    answer = await dispatch.AnnounceParcels(
                        dispatch_pb2.AnnounceParcelsRequest(parcels=[parcel]), timeout=30
                    )
                except grpc.aio.AioRpcError as exc:
                    log.warning("demo dispatcher: %s", exc.code().name)
                    continue
                (outcome,) = answer.outcomes
                if outcome.accepted:
                    sim = sims[outcome.cabinet_id]
                    tg.create_task(_journey(sim, parcel.parcel_id, settings, rng.uniform(2, 10)))


async def _journey(
    sim: SimulatedCabinet, parcel_id: str, settings: HubSettings, wait: float
) -> None:
    """Courier deposits once the cabinet has the reservation; the recipient comes later."""
    for _ in range(20):
        await asyncio.sleep(1)
        if (await sim.courier_deposit(parcel_id)).opened:
            break
    else:
        log.warning("demo courier: %s was never reserved on its cabinet", parcel_id)
        return
    await asyncio.sleep(wait)
    for _ in range(20):
        notice = await asyncio.to_thread(files.notice_for, settings.notify.path.parent, parcel_id)
        code = notice["code"] if notice else None
        if code and (await sim.recipient_pickup(code)).opened:
            return
        await asyncio.sleep(1)
    log.warning("demo recipient: could not pick up %s", parcel_id)
