"""AdminService servicer: the operator API's own token table, for the admin role."""

from __future__ import annotations

from grpc import aio

from hub.api.auth import TokenBook
from lockerhub.clock import Clock
from lockerhub.v1 import admin_pb2, admin_pb2_grpc


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, book: TokenBook, clock: Clock) -> None:
        self._book = book
        self._clock = clock

    async def ListTokens(
        self, request: admin_pb2.ListTokensRequest, context: aio.ServicerContext
    ) -> admin_pb2.ListTokensResponse:
        now = self._clock.now_ms()
        return admin_pb2.ListTokensResponse(
            tokens=[
                admin_pb2.ApiToken(
                    name=e.name,
                    role=e.role.name.lower(),
                    expires_ms=e.expires_ms or 0,
                    expired=e.expired(now),
                )
                for e in self._book.entries
            ]
        )
