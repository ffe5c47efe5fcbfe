"""How layers put their services on the shared grpc.aio server without importing it.

A layer calls `add_service(app, "floe.dataplane.v1.Uplink", register)` from its
`init_app`; the serving layer creates the server inside the running loop and calls every
`register(server)` before it starts, then lists the names for reflection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc
from quart import Quart

from app.runtime import get_runtime

__all__ = ["GrpcRegistration", "add_service", "registrations"]


@dataclass(slots=True, frozen=True)
class GrpcRegistration:
    service_name: str  # full name, e.g. "floe.dataplane.v1.Uplink" (for reflection)
    register: Callable[[grpc.aio.Server], None]


def add_service(app: Quart, service_name: str, register: Callable[[grpc.aio.Server], None]) -> None:
    regs: list[GrpcRegistration] = get_runtime(app).components.setdefault("grpc_registrations", [])
    regs.append(GrpcRegistration(service_name, register))


def registrations(app: Quart) -> list[GrpcRegistration]:
    regs: list[GrpcRegistration] = get_runtime(app).components.get("grpc_registrations", [])
    return list(regs)
