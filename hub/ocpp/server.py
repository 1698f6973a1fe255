"""The OCPP 1.6J central system: a websocket server, one handler per connected charge point.

Charge points connect to ``ws[s]://host:port/<prefix>/<site>/<pile_id>`` offering the
``ocpp1.6`` subprotocol (OCPP-J 1.6 section 3.1) and their provisioned password (HTTP Basic,
security profile 1; over TLS, profile 2). Everything is checked at the HTTP upgrade, so an unknown
or unauthenticated id leaves no trace but a counter. A pile becomes a device of kind
``charging_pile`` at its site when it boots; faults become ``charging_pile_fault`` alarms;
sessions are kept with energy.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
from collections.abc import Iterable
from http import HTTPStatus
from types import TracebackType
from typing import Self

from ocpp.exceptions import PropertyConstraintViolationError
from ocpp.v16 import call
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from hub.devices.alarms import OFFLINE, AlarmService
from hub.errors import ConfigError, DeviceUnavailable, InvalidArgument, NotFound
from hub.metrics.catalogue import HubMetrics
from hub.ocpp.credentials import PileCredentials, server_tls
from hub.ocpp.handler import SOCKET_LOG, PileHandler
from hub.ocpp.sessions import SessionStore
from hub.ocpp.state import MAX_CONNECTORS, ChargingCollector, OcppCounters, PileState
from hub.settings import OcppSettings
from hub.store import Store
from hub.store.repo import devices as devices_repo
from lockerhub.clock import Clock
from lockerhub.errors import TopicError
from lockerhub.topics import validate_id

log = logging.getLogger(__name__)
SUBPROTOCOL = Subprotocol("ocpp1.6")
_KIND = "charging_pile"
_FAULT_ALARM = "charging_pile_fault"


class CentralSystem:
    """Async context manager: serves charge points and offers remote start/stop to the API."""

    def __init__(
        self,
        settings: OcppSettings,
        *,
        sites: Iterable[str],
        store: Store,
        alarms: AlarmService,
        metrics: HubMetrics,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self._sites = frozenset(sites)
        self._store = store
        self._alarms = alarms
        self._metrics = metrics
        self._clock = clock
        self._sessions = SessionStore(settings.sessions_url or settings.sessions_path)
        self._piles: dict[str, PileState] = {}
        self._handlers: dict[str, PileHandler] = {}
        self._server: Server | None = None
        self._counters = OcppCounters()
        self._collector = ChargingCollector(
            lambda: list(self._piles.values()), counters=self._counters
        )
        self._credentials = PileCredentials()
        self._tls: ssl.SSLContext | None = None
        self._tags = frozenset(t.upper() for t in settings.authorized_id_tags)
        self._blocked = frozenset(t.upper() for t in settings.blocked_id_tags)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("OCPP central system not started")
        port: int = next(iter(self._server.sockets)).getsockname()[1]
        return port

    def url(self, site: str, pile_id: str) -> str:
        """The URL a charge point at ``site`` connects to."""
        scheme = "wss" if self.settings.security_profile == 2 else "ws"
        host, prefix = self.settings.host, self.settings.path_prefix
        return f"{scheme}://{host}:{self.port}/{prefix}/{site}/{pile_id}"

    @property
    def sessions(self) -> SessionStore:
        return self._sessions

    async def __aenter__(self) -> Self:
        s = self.settings
        if s.credentials_path is None:
            raise ConfigError("ocpp.credentials_path: required (the pile passwords file)")
        self._credentials = PileCredentials.load(s.credentials_path)
        if s.security_profile == 2 and s.tls_cert is not None and s.tls_key is not None:
            self._tls = server_tls(s.tls_cert, s.tls_key)
        await self._sessions.__aenter__()
        try:
            self._server = await serve(
                self._connection,
                s.host,
                s.port,
                subprotocols=[SUBPROTOCOL],
                process_request=self._check_request,
                max_size=s.max_message_bytes,
                compression=None,
                ssl=self._tls,
                logger=SOCKET_LOG,
            )
        except OSError as exc:
            await self._sessions.__aexit__(None, None, None)
            raise ConfigError(f"ocpp.port: cannot listen on {s.host}:{s.port}: {exc}") from exc
        self._metrics.registry.register(self._collector)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(KeyError):
            self._metrics.registry.unregister(self._collector)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self._sessions.__aexit__(exc_type, exc, tb)

    # -- connections -------------------------------------------------------------------------

    def _parse_path(self, path: str) -> tuple[str, str] | None:
        parts = path.split("?", 1)[0].strip("/").split("/")
        if len(parts) != 3 or parts[0] != self.settings.path_prefix:
            return None
        try:
            site, pile = validate_id(parts[1], "site"), validate_id(parts[2], "pile id")
        except TopicError:
            return None
        return (site, pile) if site in self._sites else None

    async def _check_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        parsed = self._parse_path(request.path)
        if parsed is None:
            return self._refuse(connection, "bad_path", HTTPStatus.NOT_FOUND, "unknown site")
        if SUBPROTOCOL not in _offered(request.headers):
            # OCPP-J 1.6 section 3.1.2: the CS must refuse a connection without ocpp1.6.
            return self._refuse(
                connection, "subprotocol", HTTPStatus.BAD_REQUEST, "subprotocol ocpp1.6 required"
            )
        site, pile_id = parsed
        if not await self._credentials.check(site, pile_id, request.headers.get("Authorization")):
            # Security profile 1/2: HTTP Basic with the pile's id and provisioned password.
            response = self._refuse(
                connection, "unauthorized", HTTPStatus.UNAUTHORIZED, "unauthorized"
            )
            response.headers["WWW-Authenticate"] = 'Basic realm="lockerhub-ocpp"'
            return response
        if pile_id in self._handlers:
            # The connected pile keeps its socket: a newcomer with its id is refused.
            return self._refuse(connection, "duplicate", HTTPStatus.CONFLICT, "already connected")
        if len(self._handlers) >= self.settings.max_piles:
            return self._refuse(
                connection, "capacity", HTTPStatus.SERVICE_UNAVAILABLE, "too many charge points"
            )
        return None

    def _refuse(
        self, connection: ServerConnection, reason: str, status: HTTPStatus, text: str
    ) -> Response:
        self._counters.refuse(reason)
        return connection.respond(status, text + "\n")

    def count_frame(self, outcome: str) -> None:
        self._counters.frame(outcome)

    def authorize(self, id_tag: str) -> str:
        """Local authorization list (OCPP 1.6 section 3.5): Accepted, Blocked or Invalid."""
        tag = id_tag.upper()
        if tag in self._blocked:
            return "Blocked"
        return "Accepted" if tag in self._tags else "Invalid"

    async def _connection(self, ws: ServerConnection) -> None:
        parsed = self._parse_path(ws.request.path if ws.request else "")
        if parsed is None:  # process_request already refused it
            return
        site, pile_id = parsed
        if pile_id in self._handlers:  # a second upgrade raced the first past process_request
            self._counters.refuse("duplicate")
            await ws.close(1008, "already connected")
            return
        pile = self._piles.get(pile_id)
        if pile is None or pile.site != site:
            pile = self._piles[pile_id] = PileState(pile_id=pile_id, site=site)
        handler = PileHandler(pile, ws, self, self.settings.response_timeout_s)
        self._handlers[pile_id] = handler
        log.info("charge point %s connected at %s", pile_id, site)
        try:
            # A pile that booted before (its device row exists) may reconnect without booting
            # again; store and metric say online together, from here or from its boot.
            handler.booted = await self._set_online(pile, True)
            pile.online = handler.booted
            await handler.serve()
        except ConnectionClosed:
            pass
        finally:
            del self._handlers[pile_id]
            pile.online = False
            now = time.monotonic()
            for c in pile.connectors.values():
                c.set_status("Unavailable", now)
                c.power_w = 0.0
            await self._set_online(pile, False)
            log.info("charge point %s disconnected", pile_id)

    # -- calls from charge points ------------------------------------------------------------

    async def on_boot(self, pile: PileState, *, vendor: str, model: str, firmware: str) -> bool:
        now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            device = await devices_repo.get_device(tx, pile.pile_id)
            if device is None:
                await devices_repo.register_device(tx, pile.pile_id, pile.site, _KIND, now)
            elif device.site != pile.site or device.kind != _KIND:
                log.warning("charge point %s clashes with a registered device", pile.pile_id)
                return False
            boots = (device.boot_count if device else 0) + 1
            await devices_repo.set_status(
                tx, pile.pile_id, online=True, boot_count=boots, firmware=firmware[:50], now_ms=now
            )
        pile.vendor, pile.model, pile.firmware, pile.boots = (
            vendor[:20],
            model[:20],
            firmware,
            boots,
        )
        pile.online = True
        return True

    @property
    def heartbeat_interval_s(self) -> int:
        return self.settings.heartbeat_interval_s

    async def on_heard(self, pile: PileState) -> None:
        """Any other call of a booted pile: alive too. OCPP 1.6's HeartbeatInterval is an
        interval of inactivity, so a pile busy with MeterValues may send no Heartbeat at all.
        Recorded as :meth:`on_heartbeat` does, at most once per half heartbeat interval (a busy
        pile must not cost a store write per call)."""
        if self._clock.now_ms() - pile.last_heard_ms >= self.settings.heartbeat_interval_s * 500:
            await self.on_heartbeat(pile)

    async def on_heartbeat(self, pile: PileState) -> None:
        """The pile is alive: its last-seen time in the store moves on (the lifecycle sweeper
        raises cabinet_offline for a pile unheard for two heartbeat intervals,
        ``OcppSettings.silent_after_s``), and an alarm that silence raised clears."""
        pile.last_heard_ms = now = self._clock.now_ms()
        async with self._store.transaction() as tx:
            await devices_repo.touch(tx, pile.pile_id, now)
            await self._alarms.clear_condition(tx, device=pile.pile_id, kind=OFFLINE)

    async def _set_online(self, pile: PileState, online: bool) -> bool:
        """Mark a booted pile on/offline in the store; False if it never booted here."""
        async with self._store.transaction() as tx:
            device = await devices_repo.get_device(tx, pile.pile_id)
            if device is None or device.kind != _KIND or device.site != pile.site:
                return False
            await devices_repo.set_status(
                tx,
                pile.pile_id,
                online=online,
                boot_count=device.boot_count,
                firmware=pile.firmware[:50],
                now_ms=self._clock.now_ms(),
            )
        return True

    def _connector_ok(self, connector_id: int) -> None:
        if not 0 <= connector_id <= MAX_CONNECTORS:
            # Answered with a CallError (PropertyConstraintViolation), nothing stored.
            raise PropertyConstraintViolationError(
                f"connector {connector_id} out of range 0-{MAX_CONNECTORS}"
            )

    async def on_status(
        self, pile: PileState, connector_id: int, status: str, error_code: str
    ) -> None:
        self._connector_ok(connector_id)
        c = pile.connector(connector_id)
        was_faulted = c.status == "Faulted" or c.error_code != "NoError"
        c.set_status(status, time.monotonic())
        c.error_code = error_code
        if status != "Charging":
            c.power_w = 0.0
        faulted = status == "Faulted" or error_code != "NoError"
        if faulted == was_faulted:
            return
        if faulted:
            pile.faults += 1
        compartment = f"connector-{connector_id}"
        raised = False
        async with self._store.transaction() as tx:
            if await devices_repo.get_device(tx, pile.pile_id) is None:
                return  # not booted yet: an alarm needs a registered device
            if faulted:
                raised = await self._alarms.raise_(
                    tx,
                    site=pile.site,
                    device=pile.pile_id,
                    kind=_FAULT_ALARM,
                    compartment=compartment,
                    detail=f"connector {connector_id}: {status} {error_code}"[:200],
                    actor=f"pile:{pile.pile_id}",
                )
            else:
                await self._alarms.clear_condition(
                    tx,
                    device=pile.pile_id,
                    kind=_FAULT_ALARM,
                    compartment=compartment,
                    actor=f"pile:{pile.pile_id}",
                )
        self._alarms.count(_FAULT_ALARM, int(raised))

    async def on_start(
        self, pile: PileState, connector_id: int, id_tag: str, meter_start_wh: float
    ) -> int:
        self._connector_ok(connector_id)
        transaction_id = await self._sessions.start(
            pile=pile.pile_id,
            site=pile.site,
            connector=connector_id,
            id_tag=id_tag,
            meter_start_wh=float(meter_start_wh),
            now_ms=self._clock.now_ms(),
        )
        pile.connector(connector_id).start_session(transaction_id, float(meter_start_wh))
        return transaction_id

    def on_meter(
        self, pile: PileState, connector_id: int, energy_wh: float | None, power_w: float | None
    ) -> None:
        self._connector_ok(connector_id)
        c = pile.connector(connector_id)
        if energy_wh is not None:
            c.reading(energy_wh)
        if power_w is not None:
            c.power_w = power_w

    async def on_stop(
        self, pile: PileState, transaction_id: int, meter_stop_wh: float, reason: str
    ) -> None:
        energy = await self._sessions.stop(
            transaction_id,
            pile=pile.pile_id,
            meter_stop_wh=float(meter_stop_wh),
            reason=reason,
            now_ms=self._clock.now_ms(),
        )
        if energy is None:
            log.info("charge point %s stopped an unknown transaction", pile.pile_id)
            return
        pile.sessions += 1
        for c in pile.connectors.values():
            if c.transaction_id == transaction_id:
                c.end_session(float(meter_stop_wh))
                c.session_energy_wh = energy

    # -- operator actions --------------------------------------------------------------------

    def piles(self, site: str = "") -> list[PileState]:
        """Charge points seen since the hub started, by id."""
        return sorted(
            (p for p in self._piles.values() if not site or p.site == site),
            key=lambda p: p.pile_id,
        )

    def _handler(self, pile_id: str) -> PileHandler:
        if pile_id not in self._piles:
            raise NotFound(f"charging pile {pile_id} is not known")
        handler = self._handlers.get(pile_id)
        if handler is None:
            raise DeviceUnavailable(f"charging pile {pile_id} is not connected")
        if not handler.booted:
            raise DeviceUnavailable(f"charging pile {pile_id} has not booted")
        return handler

    async def remote_start(self, pile_id: str, connector_id: int, id_tag: str) -> str:
        """RemoteStartTransaction; returns the pile's status (Accepted or Rejected).

        Raises:
            NotFound, DeviceUnavailable, InvalidArgument
        """
        if not 1 <= connector_id <= MAX_CONNECTORS:
            raise InvalidArgument(f"connector_id must be 1-{MAX_CONNECTORS}")
        if not id_tag or len(id_tag) > 20 or not id_tag.isprintable():
            raise InvalidArgument("id_tag must be 1-20 printable characters (OCPP CiString20)")
        handler = self._handler(pile_id)
        return await self._call(
            handler, call.RemoteStartTransaction(id_tag=id_tag, connector_id=connector_id)
        )

    async def remote_stop(self, pile_id: str, transaction_id: int) -> str:
        """RemoteStopTransaction of a running session of that pile.

        Raises:
            NotFound, DeviceUnavailable
        """
        handler = self._handler(pile_id)
        if not await self._sessions.open_session(pile_id, transaction_id):
            raise NotFound(f"no running transaction {transaction_id} on {pile_id}")
        return await self._call(handler, call.RemoteStopTransaction(transaction_id=transaction_id))

    async def _call(self, handler: PileHandler, payload: object) -> str:
        try:
            result = await handler.call_pile(payload)
        except TimeoutError as exc:
            raise DeviceUnavailable(f"charging pile {handler.id} did not answer in time") from exc
        except ConnectionClosed as exc:
            raise DeviceUnavailable(f"charging pile {handler.id} disconnected") from exc
        if result is None:  # a CallError (suppressed by the library): the pile refused
            return "Rejected"
        return str(result.status)


def _offered(headers: Headers) -> list[str]:
    return [
        p.strip() for value in headers.get_all("Sec-WebSocket-Protocol") for p in value.split(",")
    ]


__all__ = ["SUBPROTOCOL", "CentralSystem"]
