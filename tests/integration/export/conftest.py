"""A real `floe serve` exporting to a real collector port, and REST helpers for it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.export.nfdump import nfdump_available
from tests.support.ports import free_udp_port
from tests.support.server import FloeServer

ADMIN = ("admin@localhost.local", "admin123")
BASE_ENV = {"FLOE_ARGON2_PROFILE": "fast", "HTTP3_ENABLED": "false"}

if not nfdump_available():  # pragma: no cover - the Makefile's apt step installs it
    pytest.skip("nfdump (nfcapd) is not installed: apt-get install nfdump",
                allow_module_level=True)


@pytest.fixture(scope="module")
def collector_port() -> int:
    return free_udp_port()


@pytest.fixture(scope="module")
def server(collector_port: int) -> Iterator[FloeServer]:
    env = {**BASE_ENV, "FLOE_IPFIX_COLLECTORS": f"127.0.0.1:{collector_port}",
           "FLOE_IPFIX_TEMPLATE_MESSAGES": "3"}
    with FloeServer.start(env=env) as running:
        yield running


class Rest:
    """The admin's REST view of a server."""

    def __init__(self, server: FloeServer, client: httpx.AsyncClient, token: str) -> None:
        self.server = server
        self.client = client
        self.token = token

    @classmethod
    async def login(cls, server: FloeServer, client: httpx.AsyncClient) -> Rest:
        response = await client.post("/auth/login",
                                     json={"email": ADMIN[0], "password": ADMIN[1]})
        assert response.status_code == 200, response.text
        return cls(server, client, response.json()["data"]["access_token"])

    async def dataplane_key(self, node_id: str) -> str:
        response = await self.client.post(
            "/clients", headers=self._bearer(),
            json={"name": f"dp-{uuid.uuid4().hex[:6]}", "scopes": ["dataplane:write"],
                  "node_id": node_id})
        assert response.status_code == 201, response.text
        key: str = response.json()["data"]["api_key"]
        return key

    def _bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def ipfix(self, node_id: str) -> dict[str, Any]:
        response = await self.client.get("/nodes", headers=self._bearer())
        assert response.status_code == 200, response.text
        node = {n["node_id"]: n for n in response.json()["data"]}[node_id]
        view: dict[str, Any] = node["ipfix"]
        return view

    async def wait_ipfix(self, node_id: str, collector: str, *, records: int,
                         timeout: float = 20.0) -> dict[str, int]:
        """The node's counts at `collector` once all `records` are settled (none pending)."""
        deadline = time.monotonic() + timeout
        while True:
            view = await self.ipfix(node_id)
            counts: dict[str, int] = view["collectors"][collector]
            settled = counts["exported"] + counts["lost"]
            if view["records"] == records and counts["pending"] == 0 and settled == records:
                return counts
            if time.monotonic() > deadline:
                raise AssertionError(f"not settled after {timeout}s: {view}")
            await asyncio.sleep(0.1)

    async def metrics(self) -> dict[str, float]:
        """Every sample of the unauthenticated METRICS_PORT listener, by series text."""
        async with httpx.AsyncClient(timeout=10) as plain:
            response = await plain.get(f"http://127.0.0.1:{self.server.metrics_port}/metrics")
        assert response.status_code == 200
        out = {}
        for line in response.text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out
