"""Server interceptors: bearer-token auth with roles and carrier tenancy (the one place), domain
errors -> status codes (the one place), and request ids. Both unary and server-streaming calls
are covered."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from grpc import aio

from hub.api.auth import Principal, TokenBook, required_role, set_principal
from hub.api.tenancy import TenancyDenied, TenancyGuard
from hub.errors import (
    CommandTimeout,
    Conflict,
    DeviceUnavailable,
    FailedPrecondition,
    HubError,
    InvalidArgument,
    NotFound,
    StoreError,
)
from lockerhub.clock import Clock

log = logging.getLogger(__name__)

# Most specific first: the first isinstance match wins.
STATUS_FOR: tuple[tuple[type[HubError], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (Conflict, grpc.StatusCode.ALREADY_EXISTS),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (DeviceUnavailable, grpc.StatusCode.UNAVAILABLE),
    (CommandTimeout, grpc.StatusCode.DEADLINE_EXCEEDED),
    (StoreError, grpc.StatusCode.UNAVAILABLE),
)


def status_for(exc: HubError) -> grpc.StatusCode:
    for cls, code in STATUS_FOR:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


# grpc ships no type information (ignore_missing_imports): the servicer context is Any to mypy.
Context: TypeAlias = Any
Unary = Callable[[Any, Context], Awaitable[Any]]
Stream = Callable[[Any, Context], AsyncIterator[Any]]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]]


class _Wrapper:
    """What an interceptor does around a call: ``before`` may abort, ``error`` maps errors."""

    async def before(self, method: str, context: Context, request: Any) -> None:
        return None

    async def error(self, method: str, context: Context, exc: HubError) -> None:
        raise exc


def _rewrap(handler: grpc.RpcMethodHandler, method: str, w: _Wrapper) -> grpc.RpcMethodHandler:
    if handler.unary_unary is not None:
        unary: Unary = handler.unary_unary

        async def call(request: Any, context: Context) -> Any:
            await w.before(method, context, request)
            try:
                return await unary(request, context)
            except HubError as exc:
                await w.error(method, context, exc)

        return grpc.unary_unary_rpc_method_handler(
            call,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        stream: Stream = handler.unary_stream

        async def follow(request: Any, context: Context) -> AsyncIterator[Any]:
            await w.before(method, context, request)
            try:
                async for item in stream(request, context):
                    yield item
            except HubError as exc:
                await w.error(method, context, exc)

        return grpc.unary_stream_rpc_method_handler(
            follow,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler


class _Errors(_Wrapper):
    async def before(self, method: str, context: Context, request: Any) -> None:
        metadata = dict(context.invocation_metadata() or ())
        request_id = str(metadata.get("x-request-id") or uuid.uuid4())[:64]
        await context.send_initial_metadata((("x-request-id", request_id),))

    async def error(self, method: str, context: Context, exc: HubError) -> None:
        code = status_for(exc)
        if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE):
            log.warning("%s failed: %s", method, exc)
        await context.abort(code, str(exc))


class DomainErrorInterceptor(aio.ServerInterceptor):  # type: ignore[misc]
    """Maps :class:`hub.errors.HubError` to status codes and tags each call with an x-request-id
    (taken from the client's metadata or generated), echoed in the initial metadata."""

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith("/lockerhub."):
            return handler  # health and reflection pass through
        return _rewrap(handler, method, _Errors())


class _Auth(_Wrapper):
    def __init__(self, book: TokenBook, clock: Clock, tenancy: TenancyGuard | None) -> None:
        self._book = book
        self._clock = clock
        self._tenancy = tenancy

    async def before(self, method: str, context: Context, request: Any) -> None:
        header = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str):
                header = value
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing bearer token (metadata 'authorization: Bearer <token>')",
            )
        entry = self._book.lookup(token.strip())
        if entry is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown or revoked token")
        assert entry is not None
        if entry.expired(self._clock.now_ms()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"token {entry.name!r} expired")
        principal = Principal(entry.name, entry.role, entry.carrier)
        needed = required_role(method)
        if principal.role < needed:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{method.rsplit('/', 1)[-1]} needs role {needed.name.lower()}; "
                f"token {principal.name!r} has {principal.role.name.lower()}",
            )
        if principal.carrier:
            if self._tenancy is None:  # a carrier token with no guard would see everything
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, "tenancy not enforced")
            assert self._tenancy is not None
            try:
                await self._tenancy.check(method, request, principal.carrier)
            except TenancyDenied as denied:
                await context.abort(denied.code, denied.message)
        # The call's own task: read by current_actor() for audits, current_carrier() for scope.
        set_principal(principal)


# Partners authenticate with their own credentials (hub.partners.credentials), never a token.
PARTNER_PREFIX = "/lockerhub.v1.PartnerService/"


class AuthInterceptor(aio.ServerInterceptor):  # type: ignore[misc]
    """Bearer tokens with roles on every operator RPC (health and reflection stay open, so that
    orchestrators can probe the hub; PartnerService has its own credentials). Disabled when no
    token is configured."""

    def __init__(self, book: TokenBook, clock: Clock, tenancy: TenancyGuard | None = None) -> None:
        self._auth = _Auth(book, clock, tenancy)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith("/lockerhub."):
            return handler
        if method.startswith(PARTNER_PREFIX):
            return handler  # partner credentials, checked by the partner servicer itself
        return _rewrap(handler, method, self._auth)
