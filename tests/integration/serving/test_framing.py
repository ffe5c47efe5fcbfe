"""HTTP/1.1 framing an attacker controls (RFC 9112 §6.3), over raw sockets to a real server."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.integration.serving.rawhttp import read_response
from tests.support.server import FloeServer

CL_AND_TE = (
    b"POST /api/v2/auth/login HTTP/1.1\r\nHost: localhost\r\n"
    b"Content-Type: application/json\r\nContent-Length: 45\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\n"
    # what a front end honouring Content-Length would take for part of this body:
    b"GET /api/v2/ping HTTP/1.1\r\nHost: localhost\r\n\r\n"
)


@pytest.mark.parametrize("order", ["cl-first", "te-first"])
def test_content_length_with_transfer_encoding_is_400_then_closed(
    floe_server: FloeServer, order: str
) -> None:
    request = CL_AND_TE
    if order == "te-first":
        request = request.replace(b"Content-Length: 45\r\n", b"").replace(
            b"chunked\r\n", b"chunked\r\nContent-Length: 45\r\n"
        )
    with socket.create_connection(("127.0.0.1", floe_server.http_port), timeout=5) as sock:
        sock.sendall(request)
        response = read_response(sock, wait_close=3.0)
    assert response.status == 400
    assert response.json()["status"] == "error"
    assert response.json()["error"]["code"] == "bad_request"
    assert response.headers["connection"] == "close"
    assert response.closed, "the connection must be closed after answering CL+TE"
    # and the smuggled request behind it was never answered (nothing followed the close)


def test_malformed_request_line_is_400_in_the_envelope(floe_server: FloeServer) -> None:
    with socket.create_connection(("127.0.0.1", floe_server.http_port), timeout=5) as sock:
        sock.sendall(b"GET /api/v2/\xff HTTP/1.1\r\nHost: localhost\r\n\r\n")
        response = read_response(sock, wait_close=3.0)
    assert response.status == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert response.closed


def test_unsupported_transfer_encoding_is_501_in_the_envelope(floe_server: FloeServer) -> None:
    with socket.create_connection(("127.0.0.1", floe_server.http_port), timeout=5) as sock:
        sock.sendall(b"POST /api/v2/ping HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")
        response = read_response(sock, wait_close=3.0)
    assert response.status == 501
    assert response.json()["error"]["code"] == "not_implemented"
    assert response.closed


def test_protocol_errors_are_counted(floe_server: FloeServer) -> None:
    metrics = f"http://127.0.0.1:{floe_server.metrics_port}/metrics"

    def count() -> float:
        for line in httpx.get(metrics, timeout=5).text.splitlines():
            if line.startswith("floe_http1_protocol_errors_total "):
                return float(line.split()[1])
        raise AssertionError("floe_http1_protocol_errors_total missing")

    before = count()
    with socket.create_connection(("127.0.0.1", floe_server.http_port), timeout=5) as sock:
        sock.sendall(CL_AND_TE)
        read_response(sock, wait_close=3.0)
    assert count() == before + 1


def test_plain_keep_alive_still_works(floe_server: FloeServer) -> None:
    with httpx.Client() as client:
        for _ in range(3):
            assert client.get(floe_server.url("/api/v2/ping")).status_code == 200


def test_an_idle_keep_alive_connection_outlives_client_pool_expiry(floe_server: FloeServer) -> None:
    """KEEP_ALIVE_TIMEOUT (20 s) outlasts httpx's 5 s pool expiry: a connection idle for 6 s is
    still served. At hypercorn's 5 s default the server closed it just as httpx reused it, and a
    request failed with "Server disconnected without sending a response" (CI, test_escalation)."""
    ping = b"GET /api/v2/ping HTTP/1.1\r\nHost: localhost\r\n\r\n"
    with socket.create_connection(("127.0.0.1", floe_server.http_port), timeout=5) as sock:
        sock.sendall(ping)
        assert read_response(sock).status == 200
        time.sleep(6.0)
        sock.sendall(ping)
        response = read_response(sock)
    assert response.status == 200
    assert not response.closed
