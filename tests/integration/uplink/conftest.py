"""A real control plane for uplink tests: the Quart app with its lifecycle plus a real
grpc.aio server on a loopback port carrying every registered service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc
import pytest_asyncio
from quart import Quart

from app.config import Settings
from app.factory import create_app
from app.grpc.lifetime import pin_grpc_aio
from app.grpc.registry import registrations
from app.identity import provision_api_key
from app.ingest.state import IngestState

# Real API keys minted by the identity layer, by role in the tests.
KEY_SCOPES = {
    "writer": ["dataplane:write"],
    "reader": ["dataplane:read", "stats:read", "flows:read"],
    "other": ["rules:read"],
}


@dataclass
class ControlPlane:
    app: Quart
    target: str
    server: grpc.aio.Server
    keys: dict[str, str] = field(default_factory=dict)

    def bearer(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    @property
    def state(self) -> IngestState:
        from app.ingest import get_state

        return get_state(self.app)


pin_grpc_aio()


async def start_grpc(app: Quart, port: int = 0) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    for registration in registrations(app):
        registration.register(server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, bound


@pytest_asyncio.fixture(loop_scope="module")
async def control_plane(make_settings: Callable[..., Settings]) -> AsyncIterator[ControlPlane]:
    app = create_app(make_settings(METRICS_ENABLED="true"))  # /metrics on the app
    async with app.test_app():
        keys = {
            role: await provision_api_key(
                app, f"test-{role}", scopes, node_id="*" if role == "writer" else None
            )
            for role, scopes in KEY_SCOPES.items()
        }
        server, port = await start_grpc(app)
        try:
            yield ControlPlane(app=app, target=f"127.0.0.1:{port}", server=server, keys=keys)
        finally:
            await server.stop(0)
