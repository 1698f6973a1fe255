"""A real mosquitto for tests, run with the project's own config (auth, ACLs, persistence)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
from dataclasses import dataclass
from pathlib import Path

from hub.broker.mosquitto import Account, BrokerConfig, Mosquitto, new_password
from lockerhub.mqtt import client_tls_context

HUB_USERNAME = "hub"


def require_mosquitto() -> str:
    """Path of the mosquitto binary; fails (never skips) the test with a clear message if absent."""
    binary = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if binary is None:
        raise RuntimeError(
            "mosquitto is not installed: run `make test` (it apt-get installs it) "
            "or `apt-get install mosquitto`"
        )
    return binary


@dataclass
class BrokerHandle:
    """Handle on a running test broker; device accounts are provisioned on demand."""

    broker: Mosquitto

    @property
    def host(self) -> str:
        return self.broker.host

    @property
    def port(self) -> int:
        return self.broker.port

    @property
    def tls_port(self) -> int:
        assert self.broker.tls_port is not None
        return self.broker.tls_port

    @property
    def ca_file(self) -> Path:
        return self.broker.config.pki.ca_cert

    def device_tls_context(self, device_id: str, site: str) -> ssl.SSLContext:
        """A TLS context with a client certificate for a device account (created once)."""
        acc = self.broker.accounts.get(device_id)
        if acc is None or acc.site != site:
            self.broker.add_account_blocking(
                Account(username=device_id, password="", site=site, device=device_id)
            )
        cert, key = self.broker.issue_device_certificate(device_id)
        return client_tls_context(self.ca_file, cert, key)

    def hub_credentials(self) -> tuple[str, str]:
        acc = self.broker.accounts[HUB_USERNAME]
        return acc.username, acc.password

    def credentials(self, device_id: str, site: str) -> tuple[str, str]:
        """Username and password of a device account confined to its own topics (created once)."""
        acc = self.broker.accounts.get(device_id)
        if acc is None or acc.site != site:
            acc = self.broker.add_account_blocking(
                Account(username=device_id, password=new_password(), site=site, device=device_id)
            )
        return acc.username, acc.password

    def stop(self, *, kill: bool = False) -> None:
        asyncio.run(self.broker.stop(kill=kill))

    def start(self) -> None:
        asyncio.run(self.broker.start())

    async def astop(self, *, kill: bool = False) -> None:
        await self.broker.stop(kill=kill)

    async def astart(self) -> None:
        await self.broker.start()


def start_test_broker(workdir: Path, **limits: int) -> BrokerHandle:
    """Start a broker in ``workdir`` with a hub account; stop it with ``stop()``.

    ``limits`` override :class:`BrokerConfig` limits (benchmarks raise ``max_queued_messages``
    so that a backlog of 100,000 events fits a slow subscriber's queue).
    """
    binary = require_mosquitto()
    hub = Account(username=HUB_USERNAME, password=new_password())
    config = BrokerConfig(workdir=workdir, tls_port=0, **limits)
    broker = Mosquitto(config, accounts={hub.username: hub}, binary=binary)
    asyncio.run(broker.__aenter__())
    return BrokerHandle(broker)
