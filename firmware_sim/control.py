"""Loopback control of a simulated cabinet: newline-delimited JSON over TCP.

Protocol (one JSON object per line, UTF-8, at most MAX_LINE_BYTES):
    request:  {"id": 7, "op": "deposit", "parcel_id": "P1", "timeout_s": 3}
    response: {"id": 7, "ok": true, "result": {"opened": "C01", "relay_fired": true}}
              {"id": 7, "ok": false, "error": "parcel_id: required string"}
Ops: ping, state, relay_pulses [compartment_id], scan parcel_id, enter_code code,
put_item / take_item / close_door / force_open compartment_id, inject_fault / clear_fault kind
compartment_id, deposit parcel_id [timeout_s], pickup code [timeout_s], set_temperature
compartment_id celsius, sensor_glitch compartment_id present, meter_reset.
A bad request gets an error response; an over-long line gets one and the connection is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Self

from firmware_sim.cabinet import ActorResult, SimulatedCabinet
from firmware_sim.errors import ControlError
from lockerhub.driver import DriverError

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 8 * 1024
_MAX_ARG_CHARS = 512  # a courier app token (lockerhub.courier_token) is up to 512
_MAX_TIMEOUT_S = 60.0
_DEFAULT_TIMEOUT_S = 3.0

Handler = Callable[[SimulatedCabinet, Mapping[str, Any]], Awaitable[Any]]


class _BadRequest(Exception):
    pass


def _str(args: Mapping[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_ARG_CHARS:
        raise _BadRequest(f"{key}: required string of 1-{_MAX_ARG_CHARS} characters")
    return value


def _timeout(args: Mapping[str, Any]) -> float:
    value = args.get("timeout_s", _DEFAULT_TIMEOUT_S)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and 0 < value <= _MAX_TIMEOUT_S)
    ):
        raise _BadRequest(f"timeout_s: a number in (0, {_MAX_TIMEOUT_S:g}]")
    return float(value)


def _on_compartment(action: str) -> Handler:
    async def handler(sim: SimulatedCabinet, args: Mapping[str, Any]) -> Any:
        await getattr(sim, action)(_str(args, "compartment_id"))
        return None

    return handler


def _on_fault(action: str) -> Handler:
    async def handler(sim: SimulatedCabinet, args: Mapping[str, Any]) -> Any:
        await getattr(sim, action)(_str(args, "kind"), _str(args, "compartment_id"))
        return None

    return handler


async def _ping(sim: SimulatedCabinet, args: Mapping[str, Any]) -> Any:
    return "pong"


async def _state(sim: SimulatedCabinet, args: Mapping[str, Any]) -> Any:
    return sim.state()


async def _relay_pulses(sim: SimulatedCabinet, args: Mapping[str, Any]) -> Any:
    cid = args.get("compartment_id")
    return sim.relay_pulses(None if cid is None else _str(args, "compartment_id"))


async def _scan(sim: SimulatedCabinet, args: Mapping[str, Any]) -> Any:
    await sim.scan(_str(args, "parcel_id"))


async def _enter_code(sim: SimulatedCabinet, args: Mapping[str, Any]) -> Any:
    await sim.enter_code(_str(args, "code"))


async def _deposit(sim: SimulatedCabinet, args: Mapping[str, Any]) -> Any:
    result = await sim.courier_deposit(_str(args, "parcel_id"), timeout_s=_timeout(args))
    return result.to_json()


async def _pickup(sim: SimulatedCabinet, args: Mapping[str, Any]) -> Any:
    result = await sim.recipient_pickup(_str(args, "code"), timeout_s=_timeout(args))
    return result.to_json()


async def _set_temperature(sim: SimulatedCabinet, args: Mapping[str, Any]) -> Any:
    value = args.get("celsius")
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and -60 <= value <= 100)
    ):
        raise _BadRequest("celsius: a number in [-60, 100]")
    await sim.set_temperature(_str(args, "compartment_id"), float(value))


async def _sensor_glitch(sim: SimulatedCabinet, args: Mapping[str, Any]) -> Any:
    present = args.get("present")
    if not isinstance(present, bool):
        raise _BadRequest("present: true or false")
    await sim.sensor_glitch(_str(args, "compartment_id"), present)


async def _meter_reset(sim: SimulatedCabinet, args: Mapping[str, Any]) -> Any:
    await sim.meter_reset()


OPS: Mapping[str, Handler] = {
    "set_temperature": _set_temperature,
    "sensor_glitch": _sensor_glitch,
    "meter_reset": _meter_reset,
    "ping": _ping,
    "state": _state,
    "relay_pulses": _relay_pulses,
    "scan": _scan,
    "enter_code": _enter_code,
    "put_item": _on_compartment("put_item"),
    "take_item": _on_compartment("take_item"),
    "close_door": _on_compartment("close_door"),
    "force_open": _on_compartment("force_open"),
    "inject_fault": _on_fault("inject_fault"),
    "clear_fault": _on_fault("clear_fault"),
    "deposit": _deposit,
    "pickup": _pickup,
}


async def handle_request(sim: SimulatedCabinet, line: bytes) -> dict[str, Any]:
    """Answer one request line; never raises for bad input."""
    try:
        request = json.loads(line)
    except (ValueError, RecursionError):
        return {"id": None, "ok": False, "error": "request is not valid JSON"}
    if not isinstance(request, dict):
        return {"id": None, "ok": False, "error": "request must be a JSON object"}
    rid = request.get("id")
    if not (rid is None or isinstance(rid, int | str)) or isinstance(rid, bool):
        rid = None
    op = request.get("op")
    handler = OPS.get(op) if isinstance(op, str) else None
    if handler is None:
        return {"id": rid, "ok": False, "error": f"op: unknown, expected one of {sorted(OPS)}"}
    try:
        result = await handler(sim, request)
    except (_BadRequest, DriverError) as exc:
        return {"id": rid, "ok": False, "error": str(exc)}
    return {"id": rid, "ok": True, "result": result}


class ControlServer:
    """Serves the control protocol for one SimulatedCabinet on a loopback port (0 = free)."""

    def __init__(self, sim: SimulatedCabinet, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sim = sim
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the server listens on."""
        if self._server is None:
            raise ControlError("control server is not running")
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def __aenter__(self) -> Self:
        try:
            self._server = await asyncio.start_server(
                self._serve, self._host, self._port, limit=MAX_LINE_BYTES
            )
        except OSError as exc:
            raise ControlError(f"cannot listen on {self._host}:{self._port}: {exc}") from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.gather(*self._clients, return_exceptions=True)
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)  # owned: cancelled and awaited on __aexit__
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # the line overran MAX_LINE_BYTES
                    await _send(writer, {"id": None, "ok": False, "error": "request too long"})
                    break
                if not line:
                    break
                if not line.strip():
                    continue
                await _send(writer, await handle_request(self._sim, line))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()


async def _send(writer: asyncio.StreamWriter, response: Mapping[str, Any]) -> None:
    writer.write(json.dumps(response).encode() + b"\n")
    await writer.drain()


class ControlClient:
    """Async client of a ControlServer; ``async with ControlClient(host, port) as c: ...``."""

    def __init__(self, host: str, port: int, *, timeout_s: float = 10.0) -> None:
        self._host = host
        self._port = port
        self._timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._next_id = 0
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        try:
            async with asyncio.timeout(self._timeout_s):
                self._reader, self._writer = await asyncio.open_connection(
                    self._host, self._port, limit=MAX_LINE_BYTES * 16
                )
        except (OSError, TimeoutError) as exc:
            raise ControlError(
                f"cannot reach the sim control server at {self._host}:{self._port}: {exc}"
            ) from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def request(self, op: str, **args: Any) -> Any:
        """Send one request; return its result.

        Raises:
            ControlError: not connected, connection lost, or the server answered with an error.
        """
        if self._reader is None or self._writer is None:
            raise ControlError("control client is not connected")
        async with self._lock:
            self._next_id += 1
            rid = self._next_id
            payload = json.dumps({"id": rid, "op": op, **args}).encode() + b"\n"
            try:
                self._writer.write(payload)
                await self._writer.drain()
                timeout = self._timeout_s + float(args.get("timeout_s", 0))
                async with asyncio.timeout(timeout):
                    line = await self._reader.readline()
            except (OSError, TimeoutError, ValueError) as exc:
                raise ControlError(f"control request {op!r} failed: {exc}") from exc
        if not line:
            raise ControlError("control server closed the connection")
        try:
            response = json.loads(line)
        except ValueError as exc:
            raise ControlError("control server sent an invalid response") from exc
        if not isinstance(response, dict) or response.get("id") != rid:
            raise ControlError("control server sent an unexpected response")
        if not response.get("ok"):
            raise ControlError(str(response.get("error", "request failed")))
        return response.get("result")

    async def ping(self) -> None:
        await self.request("ping")

    async def state(self) -> dict[str, Any]:
        """Snapshot of the simulated cabinet."""
        result = await self.request("state")
        assert isinstance(result, dict)
        return result

    async def relay_pulses(self, compartment_id: str | None = None) -> int:
        args = {} if compartment_id is None else {"compartment_id": compartment_id}
        return int(await self.request("relay_pulses", **args))

    async def scan(self, parcel_id: str) -> None:
        await self.request("scan", parcel_id=parcel_id)

    async def enter_code(self, code: str) -> None:
        await self.request("enter_code", code=code)

    async def put_item(self, compartment_id: str) -> None:
        await self.request("put_item", compartment_id=compartment_id)

    async def take_item(self, compartment_id: str) -> None:
        await self.request("take_item", compartment_id=compartment_id)

    async def close_door(self, compartment_id: str) -> None:
        await self.request("close_door", compartment_id=compartment_id)

    async def force_open(self, compartment_id: str) -> None:
        await self.request("force_open", compartment_id=compartment_id)

    async def inject_fault(self, kind: str, compartment_id: str) -> None:
        await self.request("inject_fault", kind=kind, compartment_id=compartment_id)

    async def clear_fault(self, kind: str, compartment_id: str) -> None:
        await self.request("clear_fault", kind=kind, compartment_id=compartment_id)

    async def set_temperature(self, compartment_id: str, celsius: float) -> None:
        await self.request("set_temperature", compartment_id=compartment_id, celsius=celsius)

    async def meter_reset(self) -> None:
        await self.request("meter_reset")

    async def courier_deposit(
        self, parcel_id: str, *, timeout_s: float = _DEFAULT_TIMEOUT_S
    ) -> ActorResult:
        """Scan, wait for a door, put the item in and close it; what opened (None: refused)."""
        return _actor(await self.request("deposit", parcel_id=parcel_id, timeout_s=timeout_s))

    async def recipient_pickup(
        self, code: str, *, timeout_s: float = _DEFAULT_TIMEOUT_S
    ) -> ActorResult:
        """Enter the code, wait for a door, take the item and close it; what opened."""
        return _actor(await self.request("pickup", code=code, timeout_s=timeout_s))


def _actor(result: Any) -> ActorResult:
    if not isinstance(result, dict):
        raise ControlError("control server sent an unexpected result")
    opened = result.get("opened")
    return ActorResult(opened if isinstance(opened, str) else None, bool(result.get("relay_fired")))
