"""Simulated OCPP 1.6J charge points, speaking to the hub with the same ``ocpp`` library.

A :class:`SimulatedChargePoint` connects, boots, reports its connectors Available, heartbeats,
and charges on request (local start or the hub's RemoteStartTransaction): it sends
StartTransaction, MeterValues every ``meter_interval_s`` with a register growing at the
configured power, and StopTransaction. ``fault()`` reports a connector Faulted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from ocpp.routing import on as _ocpp_on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, ChargePointErrorCode, ChargePointStatus, RemoteStartStopStatus
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from firmware_sim.errors import SimError

_LOG = logging.getLogger("firmware_sim.ocpp.wire")
_LOG.setLevel(logging.WARNING)  # the library logs every frame at INFO
_SOCKET_LOG = logging.getLogger("firmware_sim.ocpp.websocket")
_SOCKET_LOG.setLevel(logging.INFO)  # websockets logs frame contents at DEBUG

_F = TypeVar("_F", bound=Callable[..., Any])


def on(action: Action) -> Callable[[_F], _F]:
    """``ocpp.routing.on`` with a type (the library is untyped)."""
    decorator: Callable[[_F], _F] = _ocpp_on(action)
    return decorator


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _tag_status(result: Any) -> str:
    """``idTagInfo.status`` of an Authorize/StartTransaction answer ("" for a CallError)."""
    info = getattr(result, "id_tag_info", None)
    return str(info.get("status", "")) if isinstance(info, dict) else ""


@dataclass(slots=True)
class Connector:
    status: str = ChargePointStatus.available.value
    transaction_id: int = 0
    power_w: float = 0.0
    register_wh: float = 0.0


class _Client(ChargePoint):  # type: ignore[misc]
    """The CS-initiated calls a simulated pile answers."""

    def __init__(self, sim: SimulatedChargePoint, ws: ClientConnection) -> None:
        super().__init__(sim.pile_id, ws, response_timeout=10, logger=_LOG)
        self._sim = sim

    @on(Action.remote_start_transaction)
    async def on_remote_start(
        self, id_tag: str, connector_id: int | None = None, **kwargs: Any
    ) -> call_result.RemoteStartTransaction:
        cid = connector_id or 1
        ok = self._sim.queue_action(("start", cid, id_tag))
        status = RemoteStartStopStatus.accepted if ok else RemoteStartStopStatus.rejected
        return call_result.RemoteStartTransaction(status=status)

    @on(Action.remote_stop_transaction)
    async def on_remote_stop(self, transaction_id: int) -> call_result.RemoteStopTransaction:
        found = any(c.transaction_id == transaction_id for c in self._sim.connectors.values())
        ok = found and self._sim.queue_action(("stop", transaction_id, "Remote"))
        status = RemoteStartStopStatus.accepted if ok else RemoteStartStopStatus.rejected
        return call_result.RemoteStopTransaction(status=status)


class SimulatedChargePoint:
    """A charge point with ``connectors`` connectors, as an async context manager."""

    def __init__(
        self,
        url: str,
        pile_id: str,
        *,
        connectors: int = 2,
        power_w: float = 7000.0,
        meter_interval_s: float = 1.0,
        heartbeat_s: float = 30.0,
        vendor: str = "lockerhub-sim",
        model: str = "AC7",
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        boot: bool = True,
        meter_wh: float = 0.0,
    ) -> None:
        """``password``: HTTP Basic with the pile id (OCPP 1.6 security profile 1); ``tls``: the
        client context for a ``wss://`` URL (profile 2); ``boot=False`` skips BootNotification
        (a pile reconnecting after a network drop); ``meter_wh``: the energy registers' lifetime
        reading at start."""
        self.url, self.pile_id = url, pile_id
        self._password, self._tls, self._boot = password, tls, boot
        self.power_w, self.meter_interval_s, self.heartbeat_s = (
            power_w,
            meter_interval_s,
            heartbeat_s,
        )
        self.vendor, self.model = vendor, model
        self.connectors = {i: Connector(register_wh=meter_wh) for i in range(1, connectors + 1)}
        self.registration = ""
        self._ws: ClientConnection | None = None
        self._cp: _Client | None = None
        self._actions: asyncio.Queue[tuple[str, int, str]] = asyncio.Queue(maxsize=16)
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        try:
            headers = {}
            if self._password is not None:
                token = base64.b64encode(f"{self.pile_id}:{self._password}".encode()).decode()
                headers["Authorization"] = f"Basic {token}"
            self._ws = await connect(
                self.url,
                subprotocols=[Subprotocol("ocpp1.6")],
                logger=_SOCKET_LOG,
                additional_headers=headers,
                ssl=self._tls,
            )
        except (OSError, ConnectionClosed, Exception) as exc:
            raise SimError(f"charge point {self.pile_id} cannot connect: {exc}") from exc
        self._cp = _Client(self, self._ws)
        self._tasks = [
            asyncio.create_task(self._cp.start(), name=f"{self.pile_id}-recv"),
            asyncio.create_task(self._work(), name=f"{self.pile_id}-actions"),
        ]
        try:
            if self._boot:
                boot = await self._cp.call(
                    call.BootNotification(
                        charge_point_model=self.model, charge_point_vendor=self.vendor
                    )
                )
                self.registration = str(boot.status)
            for cid in self.connectors:
                await self.status(cid, ChargePointStatus.available.value)
            self._tasks += [
                asyncio.create_task(self._meter_loop(), name=f"{self.pile_id}-meter"),
                asyncio.create_task(self._heartbeat_loop(), name=f"{self.pile_id}-heartbeat"),
            ]
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await task
        self._tasks = []
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    def _require(self) -> _Client:
        if self._cp is None:
            raise SimError("charge point not connected: use `async with`")
        return self._cp

    def queue_action(self, action: tuple[str, int, str]) -> bool:
        """Queue a start/stop for the worker (an OCPP handler must not call back itself)."""
        try:
            self._actions.put_nowait(action)
        except asyncio.QueueFull:
            return False
        return True

    async def _work(self) -> None:
        while True:
            kind, number, text = await self._actions.get()
            if kind == "start":
                with contextlib.suppress(SimError):  # a refused tag: nothing to charge
                    await self.start_charging(number, text)
            else:
                for cid, c in self.connectors.items():
                    if c.transaction_id == number:
                        await self.stop_charging(cid, reason=text)

    async def status(self, connector_id: int, status: str, error_code: str = "NoError") -> None:
        await self._require().call(
            call.StatusNotification(
                connector_id=connector_id,
                error_code=ChargePointErrorCode(error_code),
                status=ChargePointStatus(status),
                timestamp=_now(),
            )
        )
        if connector_id in self.connectors:
            self.connectors[connector_id].status = status

    async def heartbeat(self) -> None:
        await self._require().call(call.Heartbeat())

    async def start_charging(self, connector_id: int, id_tag: str) -> int:
        """Authorize, StartTransaction, status Charging; returns the transaction id.

        Raises:
            SimError: the central system did not accept the id tag.
        """
        cp, c = self._require(), self.connectors[connector_id]
        authorized = await cp.call(call.Authorize(id_tag=id_tag))
        status = _tag_status(authorized)
        if status != "Accepted":
            raise SimError(f"id tag refused: {status}")
        await self.status(connector_id, ChargePointStatus.preparing.value)
        result = await cp.call(
            call.StartTransaction(
                connector_id=connector_id,
                id_tag=id_tag,
                meter_start=round(c.register_wh),
                timestamp=_now(),
            )
        )
        status = _tag_status(result)
        if status != "Accepted":
            await self.status(connector_id, ChargePointStatus.available.value)
            raise SimError(f"transaction refused: {status}")
        c.transaction_id, c.power_w = int(result.transaction_id), self.power_w
        await self.status(connector_id, ChargePointStatus.charging.value)
        return c.transaction_id

    async def stop_charging(self, connector_id: int, *, reason: str = "Local") -> None:
        cp, c = self._require(), self.connectors[connector_id]
        if not c.transaction_id:
            return
        await self.status(connector_id, ChargePointStatus.finishing.value)
        await cp.call(
            call.StopTransaction(
                meter_stop=round(c.register_wh),
                timestamp=_now(),
                transaction_id=c.transaction_id,
                reason=reason,
            )
        )
        c.transaction_id, c.power_w = 0, 0.0
        await self.status(connector_id, ChargePointStatus.available.value)

    async def fault(self, connector_id: int, error_code: str = "GroundFailure") -> None:
        await self.status(connector_id, ChargePointStatus.faulted.value, error_code)

    async def send_meter_values(self, connector_id: int) -> None:
        c = self.connectors[connector_id]
        await self._require().call(
            call.MeterValues(
                connector_id=connector_id,
                transaction_id=c.transaction_id or None,
                meter_value=[
                    {
                        "timestamp": _now(),
                        "sampledValue": [
                            {
                                "value": f"{c.register_wh:.1f}",
                                "measurand": "Energy.Active.Import.Register",
                                "unit": "Wh",
                            },
                            {
                                "value": f"{c.power_w:.1f}",
                                "measurand": "Power.Active.Import",
                                "unit": "W",
                            },
                        ],
                    }
                ],
            )
        )

    async def _meter_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.meter_interval_s)
            now = loop.time()
            for cid, c in self.connectors.items():
                if c.transaction_id:
                    c.register_wh += c.power_w * (now - last) / 3600
                    await self.send_meter_values(cid)
            last = now

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            await self.heartbeat()
