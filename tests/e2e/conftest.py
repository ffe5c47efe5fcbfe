"""A real `floe serve` for end-to-end tests, logged in as the development admin.

`control_plane` is the fixture; `start_control_plane(env)` the same as a context manager for
tests that need another environment (TLS, a shared database) or more than one instance.
Indirect parametrisation passes env overrides to the fixture:
`@pytest.mark.parametrize("control_plane", [{"GRPC_TLS": "true"}], indirect=True)`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest

from dataplane.config import KEY_FILE
from tests.support.server import FloeServer

__all__ = ["SERVE_ENV", "ControlPlane", "start_control_plane", "wait_for_key"]

# What every e2e control plane runs with: cheap password hashing, no QUIC socket.
SERVE_ENV = {"FLOE_ARGON2_PROFILE": "fast", "HTTP3_ENABLED": "false"}


class ControlPlane:
    """A running `floe serve` plus an admin REST client on its HTTP port."""

    def __init__(self, server: FloeServer, host: str = "127.0.0.1") -> None:
        self.server = server
        http_host = f"[{host}]" if ":" in host else host
        self.client = httpx.Client(base_url=f"http://{http_host}:{server.http_port}", timeout=10)
        response = self.client.post(
            "/api/v2/auth/login", json={"email": "admin@localhost.local", "password": "admin123"}
        )
        response.raise_for_status()
        token = response.json()["data"]["access_token"]
        self.client.headers["Authorization"] = f"Bearer {token}"

    def interface(self, name: str) -> dict[str, Any] | None:
        data = self.client.get("/api/v2/stats/summary").json()["data"]
        for entry in data["interfaces"]:
            if entry["interface"] == name:
                found: dict[str, Any] = entry
                return found
        return None

    def wait_packets(self, name: str, expected: int, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        entry = None
        while time.monotonic() < deadline:
            entry = self.interface(name)
            if entry is not None and entry["packets"] >= expected:
                return entry
            time.sleep(0.1)
        raise AssertionError(f"{name}: expected {expected} packets, last summary {entry}")

    def flows(self, name: str) -> list[dict[str, Any]]:
        data = self.client.get("/api/v2/flows", params={"limit": 1000}).json()["data"]
        return [flow for flow in data if flow["interface"] == name]

    def close(self) -> None:
        self.client.close()


def wait_for_key(server: FloeServer, timeout: float = 30.0) -> None:
    """The local dataplane key is written after the listeners open: a dataplane started
    before it exists would begin with a refused key."""
    deadline = time.monotonic() + timeout
    while not (server.data_dir / KEY_FILE).exists():
        assert time.monotonic() < deadline, f"no {KEY_FILE} after {timeout}s:\n{server.output()}"
        time.sleep(0.1)


@contextlib.contextmanager
def start_control_plane(env: Mapping[str, str] | None = None) -> Iterator[ControlPlane]:
    """`floe serve` with SERVE_ENV plus `env`, its key written, logged in; stopped after."""
    with FloeServer.start({**SERVE_ENV, **(env or {})}, timeout=60) as server:
        wait_for_key(server)
        plane = ControlPlane(server)
        try:
            yield plane
        finally:
            plane.close()


@pytest.fixture
def control_plane(request: pytest.FixtureRequest) -> Iterator[ControlPlane]:
    with start_control_plane(getattr(request, "param", None)) as plane:
        yield plane
