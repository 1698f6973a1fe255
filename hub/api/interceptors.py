"""Server interceptors: domain errors -> status codes (the one place), and request ids."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

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


Behavior = Callable[[Any, aio.ServicerContext[Any, Any]], Awaitable[Any]]


def _wrap(behavior: Behavior, method: str) -> Behavior:
    async def wrapped(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
        metadata = dict(context.invocation_metadata() or ())
        request_id = str(metadata.get("x-request-id") or uuid.uuid4())[:64]
        await context.send_initial_metadata((("x-request-id", request_id),))
        try:
            return await behavior(request, context)
        except HubError as exc:
            code = status_for(exc)
            if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE):
                log.warning("%s [%s] failed: %s", method, request_id, exc)
            await context.abort(code, str(exc))

    return wrapped


class DomainErrorInterceptor(aio.ServerInterceptor):  # type: ignore[misc]
    """Maps :class:`hub.errors.HubError` to status codes and tags each call with an x-request-id
    (taken from the client's metadata or generated), echoed in the initial metadata."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith("/lockerhub.") or handler.unary_unary is None:
            return handler  # streaming handlers (health Watch, reflection) pass through
        return grpc.unary_unary_rpc_method_handler(
            _wrap(handler.unary_unary, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
