"""A real OCPP central system on a free loopback port, with provisioned piles (tests only)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from firmware_sim.charge_point import SimulatedChargePoint
from hub.devices.alarms import AlarmService
from hub.metrics.catalogue import HubMetrics
from hub.ocpp import CentralSystem
from hub.ocpp.credentials import PileCredential, PileCredentials, basic_header, hash_password
from hub.settings import OcppSettings, SiteSettings
from hub.store import Store
from hub.store.repo import devices as devices_repo
from lockerhub.clock import Clock, SystemClock

SITE = "hubsite"
# Provisioned in every harness; others are unknown to the hub.
PILES = (*(f"pile-{i}" for i in range(1, 10)), "pile-h", "pile-ok", "mute", "pile-a")
TAGS = ("TAG1", "FLEET01", "FLEET02", "SECRETTAG9", "GOOD1")
BLOCKED = ("STOLEN1",)


def password(pile: str) -> str:
    return f"pw-{pile}-0123456789abcdef"


def write_credentials(path: Path, site: str = SITE, piles: tuple[str, ...] = PILES) -> Path:
    """Pile passwords as provisioning writes them (fewer PBKDF2 rounds: tests connect a lot)."""
    PileCredentials(
        {p: PileCredential(site, hash_password(password(p), iterations=1000)) for p in piles}
    ).save(path)
    return path


def make_tls(directory: Path) -> tuple[Path, Path, ssl.SSLContext]:
    """A self-signed localhost certificate (openssl CLI) and a client context trusting it."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    client = ssl.create_default_context(cafile=str(cert))
    return cert, key, client


@dataclass
class Harness:
    system: CentralSystem
    metrics: HubMetrics
    store: Store
    client_tls: ssl.SSLContext | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def url(self, pile: str) -> str:
        return self.system.url(SITE, pile)

    def metric(self, name: str, **labels: str) -> float | None:
        value = self.metrics.registry.get_sample_value(name, labels)
        return value

    def pile(self, pile: str, **kwargs: Any) -> SimulatedChargePoint:
        """A simulated pile with its provisioned password."""
        kwargs.setdefault("password", password(pile))
        kwargs.setdefault("tls", self.client_tls)
        return SimulatedChargePoint(self.url(pile), pile, **kwargs)

    def connect(self, pile: str, secret: str | None = "", path: str = "") -> Any:
        """A raw websocket (``secret`` None: no Authorization header; "": the right password)."""
        headers = {}
        if secret is not None:
            headers["Authorization"] = basic_header(pile, secret or password(pile))
        url = self.url(pile) if not path else f"ws://127.0.0.1:{self.system.port}{path}"
        return connect(
            url,
            subprotocols=[Subprotocol("ocpp1.6")],
            additional_headers=headers,
            ssl=self.client_tls,
        )


async def call(ws: ClientConnection, frame: Any, timeout: float = 10) -> Any:
    """Send one frame (a list is JSON-encoded), return the decoded answer."""
    await ws.send(frame if isinstance(frame, str) else json.dumps(frame))
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


BOOT = [2, "boot", "BootNotification", {"chargePointVendor": "raw", "chargePointModel": "m"}]


async def eventually(check: Any, timeout: float = 10.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"not met within {timeout}s (last {value!r})")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def central_system(tmp_path: Path, **overrides: Any) -> AsyncIterator[Harness]:
    """A central system for site ``SITE`` with ``PILES`` provisioned and ``TAGS`` authorized."""
    metrics = HubMetrics(CollectorRegistry())
    clock: Clock = overrides.pop("clock", None) or SystemClock()
    client_tls = overrides.pop("client_tls", None)
    async with Store(tmp_path / "hub.db") as store:
        async with store.transaction() as tx:
            await devices_repo.upsert_sites(tx, [SiteSettings(id=SITE)])
        values: dict[str, Any] = {
            "enabled": True,
            "port": 0,
            "sessions_path": tmp_path / "ocpp.db",
            "response_timeout_s": 5,
            "credentials_path": write_credentials(tmp_path / "ocpp-piles.json"),
            "authorized_id_tags": TAGS,
            "blocked_id_tags": BLOCKED,
        }
        values.update(overrides)
        async with CentralSystem(
            OcppSettings(**values),
            sites=[SITE],
            store=store,
            alarms=AlarmService(store, clock, metrics),
            metrics=metrics,
            clock=clock,
        ) as system:
            yield Harness(system, metrics, store, client_tls)
