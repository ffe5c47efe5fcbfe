"""Helpers for uplink tests against a real `floe serve`: an admin REST client, API keys
minted through `POST /api/v2/clients` as an operator would, and raw uplink streams."""

from __future__ import annotations

import time
import uuid
from typing import Any

import grpc
import httpx

from floe.dataplane.v1 import uplink_pb2 as pb
from floe.dataplane.v1 import uplink_pb2_grpc
from tests.support.server import FloeServer

__all__ = ["admin", "connect", "mint_key", "open_stream", "rss_mib", "target", "wait"]

ADMIN = {"email": "admin@localhost.local", "password": "admin123"}


def admin(server: FloeServer) -> httpx.Client:
    """A REST client (not opened yet: usable in `with`) logged in as the default admin."""
    response = httpx.post(server.url("/api/v2/auth/login"), json=ADMIN, timeout=30)
    assert response.status_code == 200, response.text
    token = response.json()["data"]["access_token"]
    return httpx.Client(base_url=server.url(""), timeout=30,
                        headers={"Authorization": f"Bearer {token}"})


def mint_key(server: FloeServer, scopes: list[str], name: str = "") -> str:
    with admin(server) as client:
        body: dict[str, object] = {"name": name or f"k-{uuid.uuid4().hex[:8]}",
                                   "scopes": scopes}
        if "dataplane:write" in scopes:
            body["node_id"] = "*"  # these tests speak for many made-up nodes
        response = client.post("/api/v2/clients", json=body)
    assert response.status_code == 201, response.text
    key: str = response.json()["data"]["api_key"]
    return key


def target(server: FloeServer) -> str:
    return f"127.0.0.1:{server.grpc_port}"


def connect(channel: grpc.aio.Channel, key: str) -> Any:
    """A raw `Uplink.Connect` stream (nothing sent yet)."""
    return uplink_pb2_grpc.UplinkStub(channel).Connect(
        metadata=(("authorization", f"Bearer {key}"),))


async def open_stream(channel: grpc.aio.Channel, key: str, hello: Any) -> Any:
    """Connect, send `hello`, read the Welcome; the open call."""
    call = connect(channel, key)
    await call.write(pb.UplinkMessage(hello=hello))
    first = await call.read()
    assert first.WhichOneof("body") == "welcome", first
    return call


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def wait(predicate: Any, timeout: float = 10.0, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(step)
    return value
