"""The grpc.aio server: servicers, health (following store + broker), reflection (v1 and v1alpha),
interceptors, optional TLS; the port is bound exclusively (no SO_REUSEPORT)."""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from hub.api.admin import AdminServicer
from hub.api.auth import Role, TokenBook, TokenEntry
from hub.api.carriers import CarrierServicer
from hub.api.compliance import Compliance, ComplianceServicer
from hub.api.couriers import CourierServicer
from hub.api.dispatch import DispatchServicer
from hub.api.fleet import FleetServicer
from hub.api.interceptors import AuthInterceptor, DomainErrorInterceptor
from hub.api.partners import PartnerServicer
from hub.api.sorting import SortingServicer
from hub.api.tenancy import TenancyGuard
from hub.couriers.carriers import CarrierRegistry
from hub.couriers.registry import CourierRegistry
from hub.devices.alarms import AlarmService
from hub.devices.fleet import FleetService
from hub.errors import ConfigError
from hub.parcels.announce import ParcelService
from hub.parcels.feed import LiveFeed
from hub.partners.feed import PartnerFeed
from hub.planning.routes import RoutePlanner
from hub.settings import AuthSettings, GrpcSettings
from hub.store import Store
from lockerhub.clock import Clock, SystemClock
from lockerhub.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    carriers_pb2,
    carriers_pb2_grpc,
    dispatch_pb2,
    dispatch_pb2_grpc,
    fleet_pb2,
    fleet_pb2_grpc,
    partners_pb2,
    partners_pb2_grpc,
    sorting_pb2,
    sorting_pb2_grpc,
)

if TYPE_CHECKING:
    from hub.metrics.catalogue import HubMetrics
    from hub.ocpp import CentralSystem
    from hub.sorting.containers import Containers
    from hub.sorting.plans import SortPlans
    from hub.sorting.screening import Screening

log = logging.getLogger(__name__)

SERVICES = (
    dispatch_pb2.DESCRIPTOR.services_by_name["DispatchService"].full_name,
    fleet_pb2.DESCRIPTOR.services_by_name["FleetService"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
    partners_pb2.DESCRIPTOR.services_by_name["ComplianceService"].full_name,
    partners_pb2.DESCRIPTOR.services_by_name["PartnerService"].full_name,
    carriers_pb2.DESCRIPTOR.services_by_name["CarrierService"].full_name,
    carriers_pb2.DESCRIPTOR.services_by_name["CourierService"].full_name,
    sorting_pb2.DESCRIPTOR.services_by_name["SortingService"].full_name,
)
_GRACE_S = 5.0
# grpc sets SO_REUSEPORT by default: a second hub could then bind the same port and take half of
# the clients, with its own (maybe no) tokens. One hub per port: a taken port fails the start.
SERVER_OPTIONS = (("grpc.so_reuseport", 0),)
# grpcio-reflection serves only v1alpha (grpc/grpc#38576); v1 has the same messages under another
# package name, so the same servicer answers both (grpcurl and Postman ask for v1 first).
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiServices:
    """What the servicers serve from."""

    parcels: ParcelService
    fleet: FleetService
    alarms: AlarmService
    feed: LiveFeed
    charging: CentralSystem | None = None
    planner: RoutePlanner | None = None
    compliance: Compliance | None = None
    carriers: CarrierRegistry | None = None
    couriers: CourierRegistry | None = None
    # Given, the tenancy guard checks every call of a carrier-scoped token against it.
    store: Store | None = None
    # The sorting hub (hub.sorting); SortingService is served when all three are given.
    plans: SortPlans | None = None
    screening: Screening | None = None
    containers: Containers | None = None


def token_book(settings: AuthSettings) -> TokenBook:
    return TokenBook(
        (
            TokenEntry(
                name=t.name,
                role=Role[t.role.upper()],
                expires_ms=t.expires_ms,
                carrier=t.carrier,
            ),
            t.sha256,
        )
        for t in settings.tokens
    )


def _reflection_v1(servicer: reflection.aio.ReflectionServicer) -> grpc.GenericRpcHandler:
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    return grpc.method_handlers_generic_handler(REFLECTION_V1, {"ServerReflectionInfo": handler})


def _check_tls(cert: Path, key: Path) -> tuple[bytes, bytes]:
    """Read and parse the PEM files (grpc only says "Failed to bind" about a bad one).

    Raises:
        ConfigError: naming the key whose file is unreadable or not valid PEM.
    """
    for name, path in (("grpc.tls_cert", cert), ("grpc.tls_key", key)):
        try:
            path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{name}: cannot read {path}: {exc.strerror}") from exc
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_verify_locations(cadata=cert.read_text("ascii", errors="replace"))
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"grpc.tls_cert: {cert} is not a PEM certificate: {exc}") from exc
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"grpc.tls_key: {key} is not a PEM private key matching grpc.tls_cert: {exc}"
        ) from exc
    return key.read_bytes(), cert.read_bytes()


class GrpcServer:
    """Async context manager serving the operator API on ``host:port`` (0 = a free port)."""

    def __init__(
        self,
        settings: GrpcSettings,
        api: ApiServices,
        *,
        auth: AuthSettings | None = None,
        metrics: HubMetrics | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._settings = settings
        clock = clock or SystemClock()
        book = token_book(auth or AuthSettings())
        interceptors: list[aio.ServerInterceptor] = []
        if metrics is not None:
            from hub.api.metrics_interceptor import MetricsInterceptor

            interceptors.append(MetricsInterceptor(metrics))
        if book.enabled:
            tenancy = None if api.store is None else TenancyGuard(api.store)
            interceptors.append(AuthInterceptor(book, clock, tenancy))
        else:
            log.warning("grpc: no [auth] tokens configured: the operator API is open to anyone")
        interceptors.append(DomainErrorInterceptor())
        self._server = aio.server(interceptors=interceptors, options=SERVER_OPTIONS)
        self._health = HealthServicer()
        dispatch_pb2_grpc.add_DispatchServiceServicer_to_server(
            DispatchServicer(api.parcels, api.feed, api.planner, plans=api.plans), self._server
        )
        fleet_pb2_grpc.add_FleetServiceServicer_to_server(
            FleetServicer(api.fleet, api.alarms, api.charging), self._server
        )
        admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminServicer(book, clock), self._server)
        if api.compliance is not None:
            partners_pb2_grpc.add_ComplianceServiceServicer_to_server(
                ComplianceServicer(api.compliance), self._server
            )
            partners_pb2_grpc.add_PartnerServiceServicer_to_server(
                PartnerServicer(api.compliance.partners, PartnerFeed(api.compliance.store)),
                self._server,
            )
        if api.carriers is not None:
            carriers_pb2_grpc.add_CarrierServiceServicer_to_server(
                CarrierServicer(api.carriers), self._server
            )
        if api.couriers is not None:
            carriers_pb2_grpc.add_CourierServiceServicer_to_server(
                CourierServicer(api.couriers), self._server
            )
        if api.plans is not None and api.screening is not None and api.containers is not None:
            sorting_pb2_grpc.add_SortingServiceServicer_to_server(
                SortingServicer(api.plans, api.screening, api.containers), self._server
            )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflector = reflection.aio.ReflectionServicer(
            (
                *SERVICES,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
                REFLECTION_V1,
            )
        )
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(reflector, self._server)
        self._server.add_generic_rpc_handlers((_reflection_v1(reflector),))
        self.port = 0

    @property
    def address(self) -> str:
        return f"{self._settings.host}:{self.port}"

    async def __aenter__(self) -> Self:
        s = self._settings
        target = f"{s.host}:{s.port}"
        pair = (
            None if s.tls_cert is None or s.tls_key is None else _check_tls(s.tls_cert, s.tls_key)
        )
        try:
            if pair is not None:
                credentials = grpc.ssl_server_credentials([pair])
                self.port = self._server.add_secure_port(target, credentials)
            else:
                self.port = self._server.add_insecure_port(target)
        except RuntimeError as exc:
            raise ConfigError(
                f"grpc.port: cannot listen on {target} (in use by another process?): {exc}"
            ) from exc
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
