"""The `floe serve` process: env toggles, bad values, start-up failures, graceful shutdown."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from pathlib import Path

import grpc
import httpx
import pytest
import websockets
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.h3client import h3_connect
from tests.support.ports import free_port, free_udp_port
from tests.support.server import PYTHON, REPO_ROOT, FloeServer, tcp_open


def _udp_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            udp.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def test_http3_off_binds_no_udp_and_no_alt_svc() -> None:
    with FloeServer.start(env={"HTTP3_ENABLED": "false", "GRPC_ENABLED": "false"}) as server:
        assert not _udp_bound(server.https_port)
        with httpx.Client(http2=True, verify=server.ssl_context()) as client:
            response = client.get(server.url("/api/v2/ping", tls=True))
        assert response.status_code == 200 and "alt-svc" not in response.headers
        assert not tcp_open(server.grpc_port)  # GRPC_ENABLED=false → no gRPC port


def test_metrics_off_and_http2_off() -> None:
    env = {"METRICS_ENABLED": "false", "HTTP2_ENABLED": "false", "HTTP3_ENABLED": "false"}
    with FloeServer.start(env=env) as server:
        assert not tcp_open(server.metrics_port)
        assert httpx.get(server.url("/metrics")).status_code == 404
        assert tcp_open(server.grpc_port)
        with httpx.Client(http2=True, verify=server.ssl_context()) as client:
            # ALPN offers only http/1.1 now
            assert client.get(server.url("/api/v2/ping", tls=True)).http_version == "HTTP/1.1"
        with httpx.Client(http1=False, http2=True) as client:  # h2c prior knowledge refused
            assert client.get(server.url("/api/v2/ping")).status_code == 505


def test_http1_off_serves_h2_only() -> None:
    env = {"HTTP1_ENABLED": "false", "HTTP3_ENABLED": "false", "GRPC_ENABLED": "false"}
    with FloeServer.start(env=env) as server:
        refused = httpx.get(server.url("/api/v2/ping"))
        assert refused.status_code == 505
        assert refused.json()["error"]["code"] == "http_version_disabled"
        with httpx.Client(http1=False, http2=True) as client:
            assert client.get(server.url("/api/v2/ping")).status_code == 200
        with httpx.Client(http2=True, verify=server.ssl_context()) as client:
            assert client.get(server.url("/api/v2/ping", tls=True)).http_version == "HTTP/2"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HTTP_PORT", "eighty"),
        ("HTTP3_ENABLED", "maybe"),
        ("MAX_INFLIGHT_REQUESTS", "0"),
        ("GRACEFUL_TIMEOUT", "-1"),
        ("BODY_IDLE_TIMEOUT", "0"),
        ("MAX_UPLOADING_REQUESTS", "many"),
        ("TLS_CERT_FILE", "/nonexistent.pem"),
    ],
)
def test_bad_env_value_exits_2_with_one_line(
    name: str, value: str, tmp_path: os.PathLike[str]
) -> None:
    env = {**os.environ, "FLOE_DATA_DIR": str(tmp_path), "PYTHONPATH": str(REPO_ROOT), name: value}
    if name == "TLS_CERT_FILE":
        env["TLS_KEY_FILE"] = str(REPO_ROOT / "pyproject.toml")  # exists; the cert does not
    result = subprocess.run(
        [str(PYTHON), "-m", "app.cli", "serve"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0]


@pytest.mark.parametrize(
    ("variable", "kind"),
    [
        ("HTTP_PORT", socket.SOCK_STREAM),
        ("HTTPS_PORT", socket.SOCK_STREAM),
        ("HTTPS_PORT", socket.SOCK_DGRAM),  # HTTP/3 (QUIC) shares the number on UDP
        ("GRPC_PORT", socket.SOCK_STREAM),
        ("METRICS_PORT", socket.SOCK_STREAM),
    ],
    ids=["HTTP_PORT", "HTTPS_PORT-tcp", "HTTPS_PORT-udp", "GRPC_PORT", "METRICS_PORT"],
)
def test_port_in_use_is_one_line_naming_the_variable(
    variable: str, kind: int, tmp_path: os.PathLike[str]
) -> None:
    """Another process holds the port: one line on stderr, exit 1, no traceback or loop noise."""
    with socket.socket(socket.AF_INET, kind) as blocker:
        blocker.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            blocker.listen()
        port = blocker.getsockname()[1]
        ports = {
            "HTTP_PORT": free_port(),
            "HTTPS_PORT": free_udp_port(),
            "GRPC_PORT": free_port(),
            "METRICS_PORT": free_port(),
            variable: port,
        }
        env = {
            **{k: v for k, v in os.environ.items()
               if not k.startswith(("FLOE_", "DB_", "HTTP", "GRPC", "TLS_", "METRICS"))},
            **{name: str(value) for name, value in ports.items()},
            "FLOE_DATA_DIR": str(tmp_path),
            "BIND_HOST": "127.0.0.1",
            "PYTHONPATH": str(REPO_ROOT),
        }
        result = subprocess.run(
            [str(PYTHON), "-m", "app.cli", "serve"],
            env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"floe: cannot start: {variable}={port} ")
    assert lines[0].endswith("is already in use")


def _serve(tmp_path: os.PathLike[str], **extra: str) -> subprocess.CompletedProcess[str]:
    """`floe serve` on free ports with a clean environment plus `extra`; returns when it exits."""
    env = {
        **{k: v for k, v in os.environ.items()
           if not k.startswith(("FLOE_", "DB_", "HTTP", "GRPC", "TLS_", "METRICS"))},
        "HTTP_PORT": str(free_port()),
        "HTTPS_PORT": str(free_udp_port()),
        "GRPC_PORT": str(free_port()),
        "METRICS_PORT": str(free_port()),
        "FLOE_DATA_DIR": str(tmp_path),
        "BIND_HOST": "127.0.0.1",
        "PYTHONPATH": str(REPO_ROOT),
        **extra,
    }
    return subprocess.run(
        [str(PYTHON), "-m", "app.cli", "serve"],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )


def test_unusable_tls_files_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("not a certificate\n")
    result = _serve(tmp_path, TLS_CERT_FILE=str(bad), TLS_KEY_FILE=str(bad))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("floe: cannot start: TLS_CERT_FILE=")
    assert "TLS_KEY_FILE=" in lines[0]


def test_start_up_failure_has_no_traceback(tmp_path: Path) -> None:
    """A layer failing at start-up (here the database) ends with its one line, no traceback."""
    result = _serve(tmp_path, DB_TYPE="postgresql", DB_PORT=str(free_port()),
                    DB_MAX_RETRIES="0", DB_RETRY_DELAY="0", LOG_JSON="false")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("floe: start-up failed: database ") and "unreachable" in last


async def test_sigterm_shutdown_order_and_time() -> None:
    """ws closed 1001, gRPC health NOT_SERVING seen by a watcher, exit 0 within 3 s (QUIC bound)."""
    server = FloeServer.start(env={"WS_HEARTBEAT_INTERVAL": "0.1"})
    try:
        login = await asyncio.to_thread(
            httpx.post,
            server.url("/api/v2/auth/login"),
            json={"email": "admin@localhost.local", "password": "admin123"},
            timeout=10,
        )
        token = login.json()["data"]["access_token"]
        ws = await websockets.connect(
            f"ws://127.0.0.1:{server.http_port}/api/v2/stream?access_token={token}"
        )
        await asyncio.wait_for(ws.recv(), 2)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        assert (
            await asyncio.wait_for(watch.read(), 5)
        ).status == health_pb2.HealthCheckResponse.SERVING
        async with h3_connect("127.0.0.1", server.https_port, cafile=server.cert_file) as h3:
            assert (await h3.request("GET", "/healthz")).status == 200
            started = time.monotonic()
            server.signal()
            statuses = []
            try:
                while True:
                    reply = await asyncio.wait_for(watch.read(), 5)
                    if reply is grpc.aio.EOF:
                        break
                    statuses.append(reply.status)
                    if reply.status == health_pb2.HealthCheckResponse.NOT_SERVING:
                        break
            except grpc.aio.AioRpcError:
                pass
            with pytest.raises(websockets.ConnectionClosed) as closed:
                for _ in range(50):
                    await asyncio.wait_for(ws.recv(), 3)
            code = await asyncio.to_thread(server.process.wait, 10)
            elapsed = time.monotonic() - started
        await channel.close()
    finally:
        server.stop()
        server.cleanup()
    assert health_pb2.HealthCheckResponse.NOT_SERVING in statuses
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert code == 0
    assert elapsed < 3.0, f"exit took {elapsed:.2f}s"


def test_sigint_idle_exits_fast() -> None:
    server = FloeServer.start(env={"GRPC_ENABLED": "false"})
    started = time.monotonic()
    try:
        code = server.stop(sig=2)
    finally:
        server.cleanup()
    assert code == 0 and time.monotonic() - started < 1.5


def test_free_port_helper_is_free() -> None:
    assert not tcp_open(free_port())
