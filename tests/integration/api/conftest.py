"""A real `floe serve` for the OpenAPI tests, and the document it serves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import FloeServer

__all__ = ["ADMIN", "SERVER_ENV", "login"]

ADMIN = ("admin@localhost.local", "admin123")
# Fast argon2 (docs/identity.md) keeps the many password hashes of a fuzz run cheap; gRPC and
# HTTP/3 are not what these tests look at.
SERVER_ENV = {
    "FLOE_ARGON2_PROFILE": "fast",
    "GRPC_ENABLED": "false",
    "HTTP3_ENABLED": "false",
}


def login(server: FloeServer, email: str = ADMIN[0], password: str = ADMIN[1]) -> str:
    response = httpx.post(server.url("/api/v2/auth/login"),
                          json={"email": email, "password": password}, timeout=10)
    assert response.status_code == 200, response.text
    token: str = response.json()["data"]["access_token"]
    return token


@pytest.fixture(scope="module")
def server() -> Iterator[FloeServer]:
    with FloeServer.start(env=SERVER_ENV) as started:
        yield started


@pytest.fixture(scope="module")
def document(server: FloeServer) -> dict[str, Any]:
    response = httpx.get(server.url("/api/v2/openapi.json"), timeout=10)
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec
