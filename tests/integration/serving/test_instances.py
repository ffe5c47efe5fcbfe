"""`floe serve --instances N`: real processes, real sockets on 127.0.0.1.

Every protocol reaches the instances on the shared ports; fresh connections are spread over
them; an HTTP/3 connection stays with its instance for 10,000 requests and across client
address changes (connection migration) while other clients connect; the supervisor restarts a
killed worker and stops every worker within seconds, leaving no process behind.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import orjson
import pytest
import websockets
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.databases import fresh_database
from tests.support.h3client import H3Client, h3_connect
from tests.support.server import PYTHON, REPO_ROOT, FloeServer
from tests.support.topology import wait_until

pytestmark = pytest.mark.timeout(300)


def _children(pid: int) -> set[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    return {int(p) for p in text.split()}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _instance_of_fresh_connection(port: int) -> int:
    """GET /healthz on a new TCP connection (a new source port): the instance that answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    instance: int = orjson.loads(body)["instance"]
    return instance


async def _h3_instance(client: H3Client) -> int:
    response = await client.request("GET", "/healthz")
    assert response.status == 200
    instance: int = orjson.loads(response.body)["instance"]
    return instance


async def _rebind(client: H3Client) -> asyncio.DatagramTransport:
    """Move the client to a new UDP socket (new source port), as a NAT rebinding or a
    migrating client would; the old socket is closed."""
    old = client._transport
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)  # as aioquic's connect() does
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", 0))
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: client, sock=sock
    )
    assert old is not None
    old.set_protocol(asyncio.DatagramProtocol())  # its close must not reach the client
    old.close()
    return transport


@pytest.fixture(scope="module")
def two() -> Iterator[FloeServer]:
    """Two instances on SQLite, every protocol on."""
    with FloeServer.start(serve_args=("--instances", "2"), timeout=60) as server:
        yield server


@pytest.fixture(scope="module")
def three_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FloeServer]:
    """Three instances on PostgreSQL (127.0.0.1)."""
    database = fresh_database("postgresql", tmp_path_factory.mktemp("pg"))
    env = next(database)
    try:
        with FloeServer.start(env=env, serve_args=("--instances", "3"), timeout=90) as server:
            yield server
    finally:
        database.close()


def test_every_protocol_on_the_shared_ports(two: FloeServer) -> None:
    instances = set()
    for _ in range(30):
        with httpx.Client() as h1:
            reply = h1.get(two.url("/healthz"))
            assert reply.http_version == "HTTP/1.1" and reply.status_code == 200
            instances.add(reply.json()["instance"])
    assert instances == {0, 1}
    with httpx.Client(http1=False, http2=True) as h2c:
        reply = h2c.get(two.url("/api/v2/ping"))
        assert reply.http_version == "HTTP/2" and reply.status_code == 200
    with httpx.Client(http2=True, verify=two.ssl_context()) as h2:
        reply = h2.get(two.url("/healthz", tls=True))
        assert reply.http_version == "HTTP/2" and reply.status_code == 200
        assert 'h3=":' in reply.headers["alt-svc"]
    for index in range(2):  # each instance has its own metrics port
        text = httpx.get(f"http://127.0.0.1:{two.metrics_port + index}/metrics").text
        assert "floe_http_requests_total" in text


async def test_grpc_health_on_the_shared_port(two: FloeServer) -> None:
    for _ in range(10):  # fresh channels: fresh TCP connections, either instance
        async with grpc.aio.insecure_channel(f"127.0.0.1:{two.grpc_port}") as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_websocket_and_login_on_any_instance(two: FloeServer) -> None:
    """A token from one instance's login is good on every instance (shared database and
    SECRET_KEY); WebSocket streams open on whichever instance the kernel picks."""
    async with httpx.AsyncClient() as client:
        login = await client.post(two.url("/api/v2/auth/login"), json={
            "email": "admin@localhost.local", "password": "admin123"}, timeout=20)
    assert login.status_code == 200, login.text
    token = login.json()["data"]["access_token"]
    for _ in range(6):  # new TCP connections: both instances, most likely
        async with websockets.connect(
            f"ws://127.0.0.1:{two.http_port}/api/v2/stream",
            additional_headers={"Authorization": f"Bearer {token}"},
        ) as ws:
            message = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
            assert message["type"] in ("heartbeat", "stats", "hello")
    with httpx.Client() as h1:
        users = [h1.get(two.url("/api/v2/users"), headers={"Authorization": f"Bearer {token}",
                                                             "Connection": "close"})
                 for _ in range(6)]
    assert {r.status_code for r in users} == {200}


def test_fresh_tcp_connections_spread_over_three(three_pg: FloeServer) -> None:
    seen = Counter(_instance_of_fresh_connection(three_pg.http_port) for _ in range(300))
    assert set(seen) == {0, 1, 2}
    assert min(seen.values()) >= 30, seen  # the kernel's hash: ~100 each


async def test_grpc_and_h3_on_three(three_pg: FloeServer) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{three_pg.grpc_port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    seen = Counter()
    for _ in range(30):
        async with h3_connect("127.0.0.1", three_pg.https_port, cafile=three_pg.cert_file) as h3:
            seen[await _h3_instance(h3)] += 1
    assert set(seen) == {0, 1, 2}, seen  # new QUIC connections: by hash of the client's DCID


async def test_h3_connection_stays_with_its_instance(two: FloeServer) -> None:
    """10,000 requests on one connection, all answered by one instance, while other clients
    open new connections (which reach both instances)."""
    total, window = 10_000, 32
    others: Counter[int] = Counter()
    done = asyncio.Event()

    async def newcomers() -> None:
        while not done.is_set():
            async with h3_connect("127.0.0.1", two.https_port, cafile=two.cert_file) as h3:
                others[await _h3_instance(h3)] += 1

    async with h3_connect("127.0.0.1", two.https_port, cafile=two.cert_file) as client:
        owner = await _h3_instance(client)
        answers: Counter[int] = Counter()
        traffic = asyncio.create_task(newcomers())
        started = time.monotonic()

        async def worker(count: int) -> None:
            for _ in range(count):
                answers[await _h3_instance(client)] += 1

        await asyncio.wait_for(
            asyncio.gather(*(worker(total // window) for _ in range(window))), 240
        )
        elapsed = time.monotonic() - started
        done.set()
        await asyncio.wait_for(traffic, 30)
    assert answers == {owner: total // window * window}
    assert set(others) == {0, 1}, others
    print(f"10,000 HTTP/3 requests on one connection in {elapsed:.1f} s; "
          f"{sum(others.values())} other connections meanwhile: {dict(others)}")


@pytest.mark.parametrize("new_cid", [False, True], ids=["same-cid", "new-cid"])
async def test_h3_migration_keeps_the_instance(two: FloeServer, new_cid: bool) -> None:
    """The client moves to a new UDP port five times (with or without switching to a new
    server-issued CID, as RFC 9000 §9.5 advises): every reply still comes from its instance."""
    transports = []
    async with h3_connect("127.0.0.1", two.https_port, cafile=two.cert_file) as client:
        owner = await _h3_instance(client)
        ports = {client._transport.get_extra_info("sockname")[1]}  # type: ignore[union-attr]
        for _ in range(5):
            transports.append(await _rebind(client))
            ports.add(transports[-1].get_extra_info("sockname")[1])
            if new_cid:
                client.change_connection_id()
            for _ in range(5):
                assert await _h3_instance(client) == owner
        assert client._quic._network_paths[0].addr[1] != 0  # the server answered on the path
        assert client._quic._peer_cid.cid[0] == owner  # a server CID names its instance
    for transport in transports:
        transport.close()
    assert len(ports) == 6


def _describe(pids: set[int]) -> str:
    """pid, state and command line of those still alive (for a failure message)."""
    out = []
    for pid in sorted(pids):
        if _alive(pid):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            out.append(f"{pid} {stat} {cmd.strip()}")
    return "; ".join(out) or "none"


def test_restart_after_crash_then_graceful_stop() -> None:
    server = FloeServer.start(serve_args=("--instances", "2"), timeout=60)
    try:
        workers = _children(server.process.pid)
        assert len(workers) == 2
        victim = max(workers)
        os.kill(victim, signal.SIGKILL)
        assert wait_until(lambda: len(_children(server.process.pid) - {victim}) == 2, 20, 0.05), \
            "a new worker"
        # Its HTTP socket listens once its start-up is done: fresh connections reach it again.
        assert wait_until(lambda: _instance_of_fresh_connection(server.http_port) == 1, 60,
                          0.05), "the new instance 1 answering"

        async def one_h3_request() -> None:
            async with h3_connect("127.0.0.1", server.https_port, cafile=server.cert_file) as h3:
                await _h3_instance(h3)

        asyncio.run(one_h3_request())
        workers = _children(server.process.pid)
        started = time.monotonic()
        code = server.stop(timeout=15)
        stopped = time.monotonic() - started
    finally:
        server.stop()
        output = server.output()
        server.cleanup()
    assert code == 0, output
    assert stopped < 6, f"supervisor took {stopped:.1f} s"
    assert not any(_alive(pid) for pid in workers)
    assert "restarting in 0.5 s" in output
    steered = re.search(r"HTTP/3 datagrams steered: by_cid (\d+), by_hash (\d+)", output)
    assert steered is not None and int(steered[1]) > 0 and int(steered[2]) > 0, output[-2000:]
    print(f"supervisor and 2 workers stopped in {stopped:.2f} s")


def test_workers_die_with_a_killed_supervisor() -> None:
    server = FloeServer.start(serve_args=("--instances", "2"), timeout=60)
    try:
        workers = _children(server.process.pid)
        assert len(workers) == 2, f"supervisor's children: {sorted(workers)}"
        server.process.kill()
        server.process.wait()
        assert wait_until(lambda: not any(_alive(pid) for pid in workers), 10, 0.05), \
            f"workers gone (still running: {_describe(workers)})"
    finally:
        for pid in _children(server.process.pid):
            os.kill(pid, signal.SIGKILL)
        server.cleanup()


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PYTHON), "-m", "app.cli", "serve", *args], capture_output=True, text=True,
        timeout=60, cwd=REPO_ROOT, env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("value", ["0", "65", "two"])
def test_instances_out_of_range_is_refused(value: str) -> None:
    result = _serve("--instances", value)
    assert result.returncode == 2
    assert "--instances: must be" in result.stderr and "1..64" in result.stderr


def test_a_taken_instance_metrics_port_is_named(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        taken = holder.getsockname()[1]
        holder.listen()
        result = _serve("--instances", "2", env={
            "BIND_HOST": "127.0.0.1", "METRICS_PORT": str(taken - 1), "HTTP_PORT": "0",
            "HTTPS_PORT": "0", "GRPC_ENABLED": "false", "FLOE_DATA_DIR": str(tmp_path),
        })
    assert result.returncode == 1
    assert f"METRICS_PORT+1={taken} is already in use" in result.stderr


def test_a_failed_start_stops_the_supervisor(tmp_path: Path) -> None:
    """Instance 0 cannot reach its database: no restart loop, its exit code, nothing left."""
    started = time.monotonic()
    result = _serve("--instances", "2", env={
        "BIND_HOST": "127.0.0.1", "HTTP_PORT": "0", "HTTPS_PORT": "0", "METRICS_PORT": "0",
        "GRPC_ENABLED": "false", "FLOE_DATA_DIR": str(tmp_path), "DB_TYPE": "postgresql",
        "DB_HOST": "127.0.0.1", "DB_PORT": "1", "DB_NAME": "none", "DB_USER": "none",
        "DB_MAX_RETRIES": "1", "DB_RETRY_DELAY": "0.1", "FLOE_ENV": "development",
        "SECRET_KEY": "test-secret-key-not-for-production-0123456789",
    })
    assert result.returncode == 1, result.stderr
    assert "floe: start-up failed" in result.stderr
    assert "an instance failed to start (exit code 1); stopping" in result.stderr
    assert result.stderr.count('"instance 1: pid') == 0  # instance 1 was never started
    assert time.monotonic() - started < 40
