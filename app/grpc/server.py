"""The shared grpc.aio server: health (overall + per service), reflection, correlation ids.

Created inside the running loop (a server built at import time fails with "attached to a
different loop"), after every layer has added its services through `app.grpc.registry`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from quart import Quart

from app.config import Settings
from app.grpc.interceptors import CorrelationIdInterceptor
from app.grpc.registry import registrations
from app.serving.tls import tls_files

__all__ = ["GrpcServer", "start_grpc_server"]

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


@dataclass(slots=True)
class GrpcServer:
    server: grpc.aio.Server
    health: HealthServicer
    port: int


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _credentials(settings: Settings) -> grpc.ServerCredentials:
    cert, key = tls_files(settings)
    return grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])


async def start_grpc_server(
    app: Quart, settings: Settings, *, reuseport: bool = False
) -> GrpcServer:
    """Build, register every service, bind GRPC_PORT and start; must run inside the loop.

    `reuseport`: the port is shared by the instances of `floe serve --instances N`."""
    server = grpc.aio.server(
        interceptors=[CorrelationIdInterceptor()],
        # Off for one instance: a second process could otherwise silently share the port.
        options=[("grpc.so_reuseport", 1 if reuseport else 0)],
    )
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    names: list[str] = []
    for registration in registrations(app):
        registration.register(server)
        names.append(registration.service_name)
        await health.set(registration.service_name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection((*names, HEALTH_SERVICE, reflection.SERVICE_NAME), server)
    address = _address(settings.bind_host, settings.grpc_port)
    if settings.grpc_tls:  # the HTTPS certificate (or the development one)
        port = server.add_secure_port(address, await asyncio.to_thread(_credentials, settings))
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind gRPC on GRPC_PORT={settings.grpc_port}")
    await server.start()
    return GrpcServer(server, health, port)
