"""The operator gRPC API: servicers, validation, error mapping and the server."""

from hub.api.server import GrpcServer

__all__ = ["GrpcServer"]
