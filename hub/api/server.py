"""The grpc.aio server: servicers, health (following store + broker), reflection, interceptors,
optional TLS."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Self

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from hub.api.auth import Role, TokenBook
from hub.api.dispatch import DispatchServicer
from hub.api.fleet import FleetServicer
from hub.api.interceptors import AuthInterceptor, DomainErrorInterceptor
from hub.devices.alarms import AlarmService
from hub.devices.fleet import FleetService
from hub.errors import ConfigError
from hub.parcels.announce import ParcelService
from hub.parcels.feed import LiveFeed
from hub.planning.routes import RoutePlanner
from hub.settings import AuthSettings, GrpcSettings
from lockerhub.v1 import dispatch_pb2, dispatch_pb2_grpc, fleet_pb2, fleet_pb2_grpc

if TYPE_CHECKING:
    from hub.metrics.catalogue import HubMetrics
    from hub.ocpp import CentralSystem

log = logging.getLogger(__name__)

SERVICES = (
    dispatch_pb2.DESCRIPTOR.services_by_name["DispatchService"].full_name,
    fleet_pb2.DESCRIPTOR.services_by_name["FleetService"].full_name,
)
_GRACE_S = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiServices:
    """What the servicers serve from."""

    parcels: ParcelService
    fleet: FleetService
    alarms: AlarmService
    feed: LiveFeed
    charging: CentralSystem | None = None
    planner: RoutePlanner | None = None


def token_book(settings: AuthSettings) -> TokenBook:
    return TokenBook((t.name, Role[t.role.upper()], t.sha256) for t in settings.tokens)


class GrpcServer:
    """Async context manager serving the operator API on ``host:port`` (0 = a free port)."""

    def __init__(
        self,
        settings: GrpcSettings,
        api: ApiServices,
        *,
        auth: AuthSettings | None = None,
        metrics: HubMetrics | None = None,
    ) -> None:
        self._settings = settings
        book = token_book(auth or AuthSettings())
        interceptors: list[aio.ServerInterceptor] = []
        if metrics is not None:
            from hub.api.metrics_interceptor import MetricsInterceptor

            interceptors.append(MetricsInterceptor(metrics))
        if book.enabled:
            interceptors.append(AuthInterceptor(book))
        else:
            log.warning("grpc: no [auth] tokens configured: the operator API is open to anyone")
        interceptors.append(DomainErrorInterceptor())
        self._server = aio.server(interceptors=interceptors)
        self._health = HealthServicer()
        dispatch_pb2_grpc.add_DispatchServiceServicer_to_server(
            DispatchServicer(api.parcels, api.feed, api.planner), self._server
        )
        fleet_pb2_grpc.add_FleetServiceServicer_to_server(
            FleetServicer(api.fleet, api.alarms, api.charging), self._server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            (
                *SERVICES,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            self._server,
        )
        self.port = 0

    @property
    def address(self) -> str:
        return f"{self._settings.host}:{self.port}"

    async def __aenter__(self) -> Self:
        s = self._settings
        target = f"{s.host}:{s.port}"
        try:
            if s.tls_cert is not None and s.tls_key is not None:
                credentials = grpc.ssl_server_credentials(
                    [(s.tls_key.read_bytes(), s.tls_cert.read_bytes())]
                )
                self.port = self._server.add_secure_port(target, credentials)
            else:
                self.port = self._server.add_insecure_port(target)
        except OSError as exc:
            raise ConfigError(f"grpc.tls_cert: cannot read the TLS files: {exc}") from exc
        except RuntimeError as exc:
            raise ConfigError(f"grpc.port: cannot listen on {target}: {exc}") from exc
        await self._server.start()
        await self.set_serving(False)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._health.enter_graceful_shutdown()
        await self._server.stop(_GRACE_S)

    async def set_serving(self, serving: bool) -> None:
        """Health of the whole server and of each service (store and broker both up)."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *SERVICES):
            await self._health.set(name, status)
