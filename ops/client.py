"""The hub's gRPC channel for operator commands: target, TLS and the bearer token."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import grpc

DEFAULT_TARGET = "127.0.0.1:50051"
TIMEOUT_S = 30.0


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Adds ``authorization: Bearer <token>`` to every call."""

    def __init__(self, token: str) -> None:
        self._md = ("authorization", f"Bearer {token}")

    def _details(self, details: Any) -> Any:
        metadata = [*(details.metadata or ()), self._md]
        return details._replace(metadata=metadata)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)


def _token(args: argparse.Namespace) -> str:
    if getattr(args, "token_file", None) is not None:
        try:
            return str(args.token_file.read_text().strip())
        except OSError as exc:
            raise ValueError(f"--token-file: {exc}") from exc
    return os.environ.get("LOCKERHUB_TOKEN", "").strip()


def channel_for(args: argparse.Namespace) -> grpc.Channel:
    """A channel to the hub: TLS with ``--tls-ca``, with the bearer token when there is one."""
    if getattr(args, "tls_ca", None) is not None:
        try:
            ca = args.tls_ca.read_bytes()
        except OSError as exc:
            raise ValueError(f"--tls-ca: {exc}") from exc
        channel = grpc.secure_channel(args.target, grpc.ssl_channel_credentials(ca))
    else:
        channel = grpc.insecure_channel(args.target)
    token = _token(args)
    return grpc.intercept_channel(channel, _BearerToken(token)) if token else channel


def report_rpc_error(exc: grpc.RpcError) -> int:
    """Print ``error: <status>: <details>`` to stderr; the exit status is 1."""
    code = exc.code().name if hasattr(exc, "code") else "UNKNOWN"
    details = exc.details() if hasattr(exc, "details") else str(exc)
    print(f"error: {code}: {details}", file=sys.stderr)
    return 1
