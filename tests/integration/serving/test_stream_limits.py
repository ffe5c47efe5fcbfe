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
import orjson
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

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
    # One principal opens every connection of a round: lift its cap (not under test here).
    with FloeServer.start(env={**FAST, "WS_MAX_PER_PRINCIPAL": "1000"}) as server:
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


# -- connection caps and the Origin check ---------------------------------------------------

MAX_TOTAL, MAX_PER_PRINCIPAL = 12, 4
DASHBOARD = "https://dash.example.com"


@pytest.fixture(scope="module")
def capped_server() -> Iterator[FloeServer]:
    env = {**FAST, "WS_MAX_CONNECTIONS": str(MAX_TOTAL),
           "WS_MAX_PER_PRINCIPAL": str(MAX_PER_PRINCIPAL), "FLOE_ALLOWED_ORIGINS": DASHBOARD}
    with FloeServer.start(env=env) as server:
        yield server


def reader_keys(server: FloeServer, count: int) -> list[str]:
    """`count` API keys with stats:read: each one is a principal of its own."""
    headers = {"Authorization": f"Bearer {token(server)}"}
    keys = []
    for n in range(count):
        response = httpx.post(server.url("/api/v2/clients"), headers=headers, timeout=30,
                              json={"name": f"stream-reader-{n}", "scopes": ["stats:read"]})
        assert response.status_code == 201, response.text
        keys.append(response.json()["data"]["api_key"])
    return keys


def ws_metrics(server: FloeServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(server.url("/metrics"), timeout=10).text  # the serving series: anonymous
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name.startswith("floe_ws_")}


def refused(server: FloeServer, bound: str) -> float:
    return ws_metrics(server).get(("floe_ws_refused_total", (("bound", bound),)), 0.0)


async def attempt(url: str, **kwargs: Any) -> ClientConnection | InvalidStatus:
    """One handshake: the open client (a first message read), or the refusal."""
    try:
        ws = await websockets.connect(url, open_timeout=30, **kwargs)
    except InvalidStatus as refusal:
        return refusal
    await asyncio.wait_for(ws.recv(), 10)
    return ws


def split(results: list[ClientConnection | InvalidStatus],
          ) -> tuple[list[ClientConnection], list[InvalidStatus]]:
    opened = [r for r in results if isinstance(r, ClientConnection)]
    return opened, [r for r in results if isinstance(r, InvalidStatus)]


def envelope_code(refusal: InvalidStatus) -> str:
    code: str = orjson.loads(refusal.response.body or b"{}")["error"]["code"]
    return code


async def wait_clients(server: FloeServer, expected: float, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (now := ws_metrics(server)[("floe_ws_clients", ())]) != expected:
        assert time.monotonic() < deadline, f"floe_ws_clients stays {now}, not {expected}"
        await asyncio.sleep(0.05)


async def test_one_principal_is_capped(capped_server: FloeServer) -> None:
    url = stream_url(capped_server, f"?access_token={token(capped_server)}")
    before = refused(capped_server, "owner")
    opened, refusals = split(await asyncio.gather(*(attempt(url) for _ in range(10))))
    try:
        assert len(opened) == MAX_PER_PRINCIPAL and len(refusals) == 10 - MAX_PER_PRINCIPAL
        assert {r.response.status_code for r in refusals} == {429}
        assert {envelope_code(r) for r in refusals} == {"too_many_streams"}
        assert refusals[0].response.headers["Retry-After"] == "5"
        assert refused(capped_server, "owner") - before == 10 - MAX_PER_PRINCIPAL
        await opened.pop().close()  # a closed stream frees its slot at once
        await wait_clients(capped_server, MAX_PER_PRINCIPAL - 1)
        again = await attempt(url)
        assert isinstance(again, ClientConnection)
        opened.append(again)
    finally:
        await close_all(opened)
    await wait_clients(capped_server, 0)


async def test_all_principals_together_are_capped(capped_server: FloeServer) -> None:
    keys = reader_keys(capped_server, 4)  # 4 keys x 4 attempts: 16 > 12, none past its own cap
    before = refused(capped_server, "total")
    urls = [stream_url(capped_server, f"?access_token={key}") for key in keys
            for _ in range(MAX_PER_PRINCIPAL)]
    opened, refusals = split(await asyncio.gather(*(attempt(url) for url in urls)))
    try:
        assert len(opened) == MAX_TOTAL and len(refusals) == len(urls) - MAX_TOTAL
        assert {r.response.status_code for r in refusals} == {503}
        assert {envelope_code(r) for r in refusals} == {"streams_full"}
        assert refused(capped_server, "total") - before == len(urls) - MAX_TOTAL
        limits = ws_metrics(capped_server)
        assert limits[("floe_ws_limit", (("bound", "total"),))] == MAX_TOTAL
    finally:
        await close_all(opened)
    await wait_clients(capped_server, 0)


def session_cookie(server: FloeServer) -> str:
    response = login(server, session=True)
    for header in response.headers.get_list("set-cookie"):
        if header.startswith("floe_session="):
            return header.split(";", 1)[0]
    raise AssertionError("no session cookie")


@pytest.mark.parametrize("origin", [
    None,  # browsers always send one: its absence is not a browser we can vouch for
    "null",
    "https://evil.example",
    "http://127.0.0.1.evil.example",
    "https://127.0.0.1:{port}",  # our host, other scheme: another origin
    "http://127.0.0.1:1",  # our host, other port
    "not an origin",
])
async def test_cookie_upgrade_from_a_foreign_origin_is_refused(
        capped_server: FloeServer, origin: str | None) -> None:
    headers = {"Cookie": session_cookie(capped_server)}
    if origin is not None:
        headers["Origin"] = origin.format(port=capped_server.http_port)
    result = await attempt(stream_url(capped_server), additional_headers=headers)
    if isinstance(result, ClientConnection):
        await result.close()
        raise AssertionError(f"a cookie stream from {origin!r} was accepted")
    assert result.response.status_code == 403
    assert envelope_code(result) == "origin_not_allowed"


@pytest.mark.parametrize("origin", ["http://127.0.0.1:{port}", "HTTP://127.0.0.1:{port}",
                                    DASHBOARD, DASHBOARD + ":443"])
async def test_cookie_upgrade_from_an_allowed_origin(capped_server: FloeServer,
                                                     origin: str) -> None:
    headers = {"Cookie": session_cookie(capped_server),
               "Origin": origin.format(port=capped_server.http_port)}
    result = await attempt(stream_url(capped_server), additional_headers=headers)
    assert isinstance(result, ClientConnection), result
    await result.close()


async def test_bearer_streams_need_no_origin(capped_server: FloeServer) -> None:
    """A bearer credential is not ambient (a foreign page cannot know it): no Origin check."""
    url = stream_url(capped_server, f"?access_token={token(capped_server)}")
    result = await attempt(url, additional_headers={"Origin": "https://evil.example"})
    assert isinstance(result, ClientConnection), result
    await result.close()
