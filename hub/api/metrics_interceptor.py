"""gRPC server interceptor timing every unary operator call by method and status code."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

import grpc
from grpc import aio

from hub.metrics.catalogue import HubMetrics

Behavior = Callable[[Any, aio.ServicerContext[Any, Any]], Awaitable[Any]]


def _code_name(context: aio.ServicerContext[Any, Any], default: str) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    return default


class MetricsInterceptor(aio.ServerInterceptor):  # type: ignore[misc]
    """Observes ``lockerhub_grpc_request_duration_seconds{method, code}``.

    Place it first so it also times the error mapping. Only methods the server registered get a
    label value (unknown methods have no handler), so the label stays bounded.
    """

    def __init__(self, metrics: HubMetrics) -> None:
        self._metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith("/lockerhub.") or handler.unary_unary is None:
            return handler
        behavior: Behavior = handler.unary_unary
        histogram = self._metrics.grpc_duration
        short = method.rsplit("/", 1)[-1]

        async def timed(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            start = perf_counter()
            code = "OK"
            try:
                response = await behavior(request, context)
                code = _code_name(context, "OK")
                return response
            except BaseException:
                code = _code_name(context, "UNKNOWN")
                raise
            finally:
                histogram.labels(short, code).observe(perf_counter() - start)

        return grpc.unary_unary_rpc_method_handler(
            timed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
