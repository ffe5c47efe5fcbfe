"""Request bodies that never finish cannot take the server's request slots (raw sockets)."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.integration.serving.rawhttp import read_response
from tests.support.server import FloeServer

SLOW = 260  # more than MAX_INFLIGHT_REQUESTS (256 here): before the fix every REST call was a 503
IDLE = 4.0  # BODY_IDLE_TIMEOUT for these servers (default 5 s)
TOTAL = 8.0  # BODY_TIMEOUT

HEAD = (
    b"POST /api/v2/auth/login HTTP/1.1\r\nHost: localhost\r\n"
    b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
)


@pytest.fixture(scope="module")
def server() -> Iterator[FloeServer]:
    env = {
        "BODY_IDLE_TIMEOUT": str(IDLE),
        "BODY_TIMEOUT": str(TOTAL),
        "MAX_INFLIGHT_REQUESTS": "256",  # below SLOW, so held uploads would fill it
        "GRPC_ENABLED": "false",
        "HTTP3_ENABLED": "false",
    }
    with FloeServer.start(env=env) as srv:
        yield srv


def _gauge(text: str, name: str) -> float:
    match = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else -1.0


def _wait_metrics(server: FloeServer, done: Callable[[str], bool], timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = httpx.get(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5).text
        if done(text) or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def _open_slow(server: FloeServer, count: int, first: bytes = b"{") -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", server.http_port), timeout=10)
        sock.sendall(HEAD + first)
        socks.append(sock)
    return socks


async def _rest_burst(server: FloeServer, count: int) -> list[int]:
    """`count` parallel REST calls, half public GETs, half logins with a wrong password."""
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=count)) as c:
        calls = []
        for i in range(count):
            if i % 2:
                calls.append(c.get(server.url("/api/v2/ping")))
            else:
                body = {"email": "nobody@localhost.local", "password": "wrong-password"}
                calls.append(c.post(server.url("/api/v2/auth/login"), json=body))
        return [r.status_code for r in await asyncio.gather(*calls)]


def test_260_stalled_bodies_leave_rest_answering(server: FloeServer) -> None:
    started = time.monotonic()
    socks = _open_slow(server, SLOW)
    try:
        text = _wait_metrics(
            server,
            lambda t: _gauge(t, "floe_http_uploading_requests") >= SLOW
            or _gauge(t, "floe_http_inflight_requests") >= 256,
        )
        statuses = asyncio.run(_rest_burst(server, 40))
        assert 503 not in statuses, statuses
        assert all(200 <= s < 500 for s in statuses), statuses
        assert _gauge(text, "floe_http_uploading_requests") == SLOW
        assert _gauge(text, "floe_http_inflight_requests") <= 1  # this scrape is exempt
        # the stalled uploads end with 408 in the envelope, and their connections close
        for sock in socks:
            response = read_response(sock, timeout=IDLE + 10, wait_close=3.0)
            assert response.status == 408
            assert response.json()["error"]["code"] == "request_timeout"
            assert response.closed
    finally:
        for sock in socks:
            sock.close()
    assert time.monotonic() - started < IDLE + 30
    text = _wait_metrics(server, lambda t: _gauge(t, "floe_http_uploading_requests") == 0)
    assert _gauge(text, "floe_http_uploading_requests") == 0
    assert f'floe_http_bodies_refused_total{{reason="timeout"}} {float(SLOW)}' in text
    assert 'floe_http_admission_rejected_total 0.0' in text


def test_trickled_body_hits_the_total_deadline(server: FloeServer) -> None:
    """One byte per second never trips the idle timeout, but BODY_TIMEOUT ends it."""
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(HEAD + b"{")
        for _ in range(int(TOTAL) + 6):
            time.sleep(1.0)
            try:
                sock.sendall(b" ")
            except OSError:  # the server answered and closed: read the answer below
                break
            sock.settimeout(0.01)
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    break
            except TimeoutError:
                pass
        response = read_response(sock, timeout=5)
    elapsed = time.monotonic() - started
    assert response.status == 408
    assert TOTAL - 1 <= elapsed <= TOTAL + 3


def test_a_complete_slow_body_is_served(server: FloeServer) -> None:
    """Pauses shorter than BODY_IDLE_TIMEOUT are fine; the request is then handled."""
    body = b'{"email":"nobody@localhost.local","extra":"reaches the validator"}'
    head = HEAD.replace(b"Content-Length: 100", f"Content-Length: {len(body)}".encode())
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as sock:
        sock.sendall(head + body[:10])
        time.sleep(1.0)
        sock.sendall(body[10:])
        response = read_response(sock, timeout=10)
    assert response.status == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_declared_oversize_body_is_413_before_upload(server: FloeServer) -> None:
    head = HEAD.replace(b"Content-Length: 100", b"Content-Length: 2000000")  # > 1 MiB
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as sock:
        sock.sendall(head + b"{")
        response = read_response(sock, timeout=5, wait_close=3.0)
    assert response.status == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert response.closed


def test_uploads_past_their_bound_are_refused() -> None:
    env = {"MAX_UPLOADING_REQUESTS": "20", "GRPC_ENABLED": "false", "HTTP3_ENABLED": "false"}
    with FloeServer.start(env=env) as srv:
        socks = _open_slow(srv, 20)
        try:
            _wait_metrics(srv, lambda t: _gauge(t, "floe_http_uploading_requests") >= 20)
            extra = _open_slow(srv, 1)[0]
            socks.append(extra)
            refused = read_response(extra, timeout=5)
            assert refused.status == 503
            assert refused.json()["error"]["code"] == "overloaded"
            assert refused.headers["retry-after"] == "1"
            assert httpx.get(srv.url("/api/v2/ping"), timeout=5).status_code == 200
            text = _wait_metrics(srv, lambda t: "uploads_full" in t)
            assert 'floe_http_bodies_refused_total{reason="uploads_full"} 1.0' in text
        finally:
            for sock in socks:
                sock.close()
