"""What the attack tests share: a real `floe serve`, HTTP clients bound to chosen loopback
source addresses (127.0.0.0/8 all reaches the server on 127.0.0.1), and bursts of logins.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.server import FloeServer

__all__ = [
    "ADMIN",
    "Answer",
    "burst",
    "from_source",
    "login",
    "start_server",
]

ADMIN = ("admin@localhost.local", "admin123")

# Fast argon2 keeps the suite quick; the races below are in the awaits around the verify
# (database round trips), which the fast profile does not remove.
BASE_ENV = {
    "FLOE_ARGON2_PROFILE": "fast",
    "HTTP3_ENABLED": "false",
    "GRPC_ENABLED": "false",
    "METRICS_ENABLED": "false",
}


def start_server(env: Mapping[str, str] | None = None, **kw: Any) -> FloeServer:
    return FloeServer.start({**BASE_ENV, **(env or {})}, **kw)


@dataclass(slots=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: httpx.Headers
    seconds: float

    @property
    def code(self) -> str | None:
        error = self.body.get("error")
        return error.get("code") if isinstance(error, dict) else None


@asynccontextmanager
async def from_source(server: FloeServer, source: str = "127.0.0.1") -> AsyncIterator[
    httpx.AsyncClient
]:
    """A client whose connections leave from `source` (a distinct attacker address)."""
    transport = httpx.AsyncHTTPTransport(
        local_address=source, limits=httpx.Limits(max_connections=64)
    )
    async with httpx.AsyncClient(
        transport=transport, base_url=server.url(), timeout=30.0
    ) as client:
        yield client


async def login(client: httpx.AsyncClient, email: str, password: str) -> Answer:
    started = time.perf_counter()
    response = await client.post(
        "/api/v2/auth/login", json={"email": email, "password": password}
    )
    elapsed = time.perf_counter() - started
    return Answer(response.status_code, response.json(), response.headers, elapsed)


async def burst(client: httpx.AsyncClient, attempts: list[tuple[str, str]]) -> list[Answer]:
    """Every attempt at once (bounded by the list), answers in the same order."""
    return list(
        await asyncio.wait_for(
            asyncio.gather(*(login(client, email, pw) for email, pw in attempts)), 60.0
        )
    )
