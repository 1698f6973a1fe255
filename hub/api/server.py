"""The grpc.aio server: servicers, health (following store + broker), reflection, interceptors."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from hub.api.dispatch import DispatchServicer
from hub.api.fleet import FleetServicer
from hub.api.interceptors import DomainErrorInterceptor
from hub.errors import ConfigError
from hub.fleet import FleetService
from hub.parcels import ParcelService
from hub.settings import GrpcSettings
from lockerhub.v1 import dispatch_pb2, dispatch_pb2_grpc, fleet_pb2, fleet_pb2_grpc

SERVICES = (
    dispatch_pb2.DESCRIPTOR.services_by_name["DispatchService"].full_name,
    fleet_pb2.DESCRIPTOR.services_by_name["FleetService"].full_name,
)
_GRACE_S = 5.0


class GrpcServer:
    """Async context manager serving the operator API on ``host:port`` (0 = a free port)."""

    def __init__(self, settings: GrpcSettings, parcels: ParcelService, fleet: FleetService) -> None:
        self._settings = settings
        self._server = aio.server(interceptors=[DomainErrorInterceptor()])
        self._health = HealthServicer()
        dispatch_pb2_grpc.add_DispatchServiceServicer_to_server(
            DispatchServicer(parcels), self._server
        )
        fleet_pb2_grpc.add_FleetServiceServicer_to_server(FleetServicer(fleet), self._server)
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
        try:
            self.port = self._server.add_insecure_port(
                f"{self._settings.host}:{self._settings.port}"
            )
        except RuntimeError as exc:
            raise ConfigError(
                f"grpc.port: cannot listen on {self._settings.host}:{self._settings.port}: {exc}"
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
