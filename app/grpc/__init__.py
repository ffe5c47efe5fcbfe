"""gRPC server side: the shared grpc.aio server, its interceptor and the service registry."""

from __future__ import annotations

__all__: list[str] = []
