"""WebSocket `/api/v2/stream` against a real `floe serve`, driven as an attacker would: many
real `websockets` clients, connect/close rounds with the server's RSS measured, connection
caps, and cookie-authenticated upgrades from foreign origins (cross-site WebSocket hijacking).
"""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from app.serving.tcp import PromptCloseTCPServer
from tests.support.server import FloeServer

ADMIN = {"email": "admin@localhost.local", "password": "admin123"}
FAST = {"HTTP3_ENABLED": "false", "FLOE_ARGON2_PROFILE": "fast"}


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def login(server: FloeServer, *, session: bool = False) -> httpx.Response:
    response = httpx.post(server.url("/api/v2/auth/login"), json={**ADMIN, "session": session},
                          timeout=30)
    assert response.status_code == 200, response.text
    return response


def token(server: FloeServer) -> str:
    value: str = login(server).json()["data"]["access_token"]
    return value


def stream_url(server: FloeServer, query: str = "") -> str:
    return f"ws://127.0.0.1:{server.http_port}/api/v2/stream{query}"


async def open_many(url: str, count: int, *, parallel: int = 100,
                    **kwargs: Any) -> list[ClientConnection]:
    """`count` real clients, `parallel` handshakes at a time; each has read one message."""
    gate = asyncio.Semaphore(parallel)

    async def one() -> ClientConnection:
        async with gate:
            ws = await websockets.connect(url, open_timeout=30, **kwargs)
            await asyncio.wait_for(ws.recv(), 10)
            return ws

    return await asyncio.gather(*(one() for _ in range(count)))


async def close_all(clients: list[ClientConnection]) -> None:
    await asyncio.gather(*(ws.close() for ws in clients))


@pytest.fixture(scope="module")
def leak_server() -> Iterator[FloeServer]:
    with FloeServer.start(env=FAST) as server:
        yield server


async def test_rss_levels_off_across_connect_close_rounds(leak_server: FloeServer) -> None:
    """Bounded rounds of 250 real clients connecting, reading, closing: the server's RSS
    must stop growing once the first rounds have warmed it up.

    Two causes were found with tracemalloc against this server: every connection kept a
    zlib compressor (permessage-deflate, ~256 KiB each) that fragmented the heap, and
    hypercorn's connection object graph sat in a reference cycle until a rare full
    collection (+33 objects per connection, never freed between rounds)."""
    url = stream_url(leak_server, f"?access_token={token(leak_server)}")
    pid = leak_server.process.pid
    rounds, per_round = 8, 250
    samples: list[float] = []
    deadline = time.monotonic() + 120
    for _ in range(rounds):
        assert time.monotonic() < deadline, f"rounds too slow; RSS so far {samples}"
        clients = await open_many(url, per_round)
        await close_all(clients)
        await asyncio.sleep(1.0)  # the server notices the closes and ends the handlers
        samples.append(rss_mib(pid))
    warm = samples[2]
    growth = samples[-1] - warm
    assert growth < 6.0, f"RSS still growing after warm-up: {[round(s, 1) for s in samples]}"


async def test_permessage_deflate_is_declined(leak_server: FloeServer) -> None:
    url = stream_url(leak_server, f"?access_token={token(leak_server)}")
    async with websockets.connect(url) as ws:  # the client offers permessage-deflate
        assert ws.response is not None
        assert "sec-websocket-extensions" not in ws.response.headers
        await asyncio.wait_for(ws.recv(), 10)


async def test_a_closed_connection_is_freed_by_reference_counting() -> None:
    """hypercorn's connection handler (Floe's `PromptCloseTCPServer`) over a real socket, a
    real WebSocket client, the collector off: once the connection is closed nothing of it
    may wait for a garbage collection (the serve process collects old objects rarely)."""
    from hypercorn.app_wrappers import ASGIWrapper
    from hypercorn.asyncio.worker_context import WorkerContext
    from hypercorn.config import Config

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": "hello"})
            while (await receive())["type"] != "websocket.disconnect":
                pass

    loop = asyncio.get_running_loop()
    handlers: list[weakref.ref[PromptCloseTCPServer]] = []
    finished = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = PromptCloseTCPServer(ASGIWrapper(asgi), loop, Config(), WorkerContext(None),
                                       {}, reader, writer)
        handlers.append(weakref.ref(handler))
        try:
            await handler
        finally:
            finished.set()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    gc.collect()
    gc.disable()
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:
            assert await asyncio.wait_for(ws.recv(), 5) == "hello"
        await asyncio.wait_for(finished.wait(), 5)
        for _ in range(5):  # let the connection's own tasks finish their last steps
            await asyncio.sleep(0)
        assert handlers[0]() is None, "the closed connection waits for a garbage collection"
    finally:
        gc.enable()
        listener.close()
        await listener.wait_closed()
