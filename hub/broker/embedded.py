"""An in-process MQTT 3.1.1 broker (amqtt) so that `lockerhub demo` runs with nothing but Python.

It has no per-device accounts or ACLs and speaks MQTT 3.1.1 only (no shared subscriptions, no
message expiry property): fine for trying lockerhub on a laptop, never for cabinets in a street.
The project's broker is mosquitto with the config from :mod:`hub.broker.mosquitto`.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, Self

from hub.broker.mosquitto import free_port
from hub.errors import BrokerError

PROTOCOL = "3.1.1"


class EmbeddedBroker:
    """amqtt's broker on a loopback port; an async context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._broker: Any = None

    async def __aenter__(self) -> Self:
        try:
            from amqtt.broker import Broker
        except ImportError as exc:
            raise BrokerError(
                "no mosquitto binary and no embedded broker: `apt-get install mosquitto`, "
                "or `pip install 'lockerhub[embedded-broker]'`"
            ) from exc
        # amqtt logs every connection at INFO; the demo's own log is what a newcomer reads.
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        self._broker = Broker(config)
        try:
            await self._broker.start()
        except Exception as exc:  # amqtt raises its own BrokerError and OSError subclasses
            raise BrokerError(f"embedded broker failed to start: {exc}") from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()
