"""MAX_CONNECTIONS against a real server: idle sockets an outsider holds open stop at the bound,
the next one is aborted and counted, and a freed slot is served again."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.serving.rawhttp import read_response
from tests.support.server import FloeServer
from tests.support.topology import wait_until

LIMIT = 4
PING = b"GET /api/v2/ping HTTP/1.1\r\nHost: localhost\r\n\r\n"


@pytest.fixture(scope="module")
def server() -> Iterator[FloeServer]:
    env = {"MAX_CONNECTIONS": str(LIMIT), "HTTP3_ENABLED": "false"}
    with FloeServer.start(env=env) as running:
        yield running


def metric(server: FloeServer, name: str) -> float:
    """From METRICS_PORT, which is its own listener: scrapes work while the bound is reached."""
    text = httpx.get(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} missing")


def connections_reach(server: FloeServer, count: int, timeout: float = 5.0) -> bool:
    """Whether the open-connections gauge reaches `count` within `timeout`."""
    return wait_until(lambda: metric(server, "floe_tcp_connections") == count, timeout, 0.05)


def aborted(sock: socket.socket) -> bool:
    """Whether the server closed this connection without answering."""
    sock.settimeout(3.0)
    try:
        sock.sendall(PING)
        return sock.recv(65536) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def test_idle_connections_stop_at_max_connections(server: FloeServer) -> None:
    assert connections_reach(server, 0), "readiness probes closed"
    refused = metric(server, "floe_tcp_connections_refused_total")
    held = [socket.create_connection(("127.0.0.1", server.http_port), timeout=5)
            for _ in range(LIMIT)]
    try:
        assert connections_reach(server, LIMIT), "the bound is reached"
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as extra:
            assert aborted(extra), "a connection past MAX_CONNECTIONS must be aborted"
        assert metric(server, "floe_tcp_connections_refused_total") == refused + 1
        held[0].sendall(PING)  # the held ones are still served
        assert read_response(held[0]).status == 200
    finally:
        for sock in held:
            sock.close()
    assert connections_reach(server, 0), "closed connections counted off"
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as again:
        again.sendall(PING)
        assert read_response(again).status == 200


def test_a_connection_the_client_closed_frees_its_slot_at_once(server: FloeServer) -> None:
    """hypercorn kept a closed, idle connection (CLOSE-WAIT) until its idle timer, 20 s: a
    client that connected and left would have held a slot that long."""
    assert connections_reach(server, 0), "earlier connections closed"
    refused = metric(server, "floe_tcp_connections_refused_total")
    for _ in range(3 * LIMIT):
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as sock:
            sock.sendall(PING)
            assert read_response(sock).status == 200
        assert connections_reach(server, 0, timeout=2.0), "the slot freed"
    assert metric(server, "floe_tcp_connections_refused_total") == refused
