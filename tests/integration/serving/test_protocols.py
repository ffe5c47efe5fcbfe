"""One real `floe serve` process: every protocol with a real client."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import grpc
import httpx
import orjson
import websockets
from aioquic.h3.connection import Setting
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.support.h3client import h3_connect
from tests.support.server import FloeServer


def _login(server: FloeServer) -> str:
    response = httpx.post(
        server.url("/api/v2/auth/login"),
        json={"email": "admin@localhost.local", "password": "admin123"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["data"]["access_token"]
    return token


def test_http11_cleartext(floe_server: FloeServer) -> None:
    response = httpx.get(floe_server.url("/api/v2/ping"))
    assert response.http_version == "HTTP/1.1"
    assert response.json()["data"] == {"pong": True}
    assert "x-request-id" in response.headers


def test_h2c_prior_knowledge(floe_server: FloeServer) -> None:
    with httpx.Client(http1=False, http2=True) as client:
        response = client.get(floe_server.url("/api/v2/ping"))
    assert response.http_version == "HTTP/2"
    assert response.status_code == 200


def test_tls_h2_and_h1_by_alpn(floe_server: FloeServer) -> None:
    with httpx.Client(http2=True, verify=floe_server.ssl_context()) as client:
        response = client.get(floe_server.url("/api/v2/ping", tls=True))
    assert response.http_version == "HTTP/2"
    assert response.headers["alt-svc"] == f'h3=":{floe_server.https_port}"; ma=3600'
    with httpx.Client(verify=floe_server.ssl_context()) as client:
        assert client.get(floe_server.url("/api/v2/ping", tls=True)).http_version == "HTTP/1.1"


async def test_http3(floe_server: FloeServer) -> None:
    async with h3_connect("127.0.0.1", floe_server.https_port, cafile=floe_server.cert_file) as h3:
        response = await h3.request("GET", "/api/v2/ping", headers=[("x-request-id", "h3-req")])
        many = await asyncio.gather(*(h3.request("GET", "/healthz") for _ in range(20)))
        received_settings = h3.received_settings
    assert response.status == 200
    assert orjson.loads(response.body)["data"] == {"pong": True}
    # hypercorn's H3 never told the app a stream closed: requests stayed "in flight" forever
    for _ in range(100):  # the closes reach the app asynchronously: poll, up to ~5 s
        metrics = httpx.get(floe_server.url("/metrics")).text
        if "floe_http_inflight_requests 0.0" in metrics:
            break
        await asyncio.sleep(0.05)
    assert "floe_http_inflight_requests 0.0" in metrics
    assert response.header("x-request-id") == "h3-req"
    assert {r.status for r in many} == {200}
    # no QPACK dynamic table by default (QUIC_QPACK_TABLE): one datagram fewer per request
    assert received_settings[Setting.QPACK_MAX_TABLE_CAPACITY] == 0


async def test_grpc_health_check_watch_and_reflection(floe_server: FloeServer) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{floe_server.grpc_port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        call = health.Check(
            health_pb2.HealthCheckRequest(service=""), metadata=(("x-request-id", "grpc-1"),)
        )
        reply = await call
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert ("x-request-id", "grpc-1") in tuple(await call.initial_metadata())
        uplink = await health.Check(
            health_pb2.HealthCheckRequest(service="floe.dataplane.v1.Uplink")
        )
        assert uplink.status == health_pb2.HealthCheckResponse.SERVING
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
        first = await asyncio.wait_for(watch.read(), 5)
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        metadata = await watch.initial_metadata()
        assert any(key == "x-request-id" for key, _ in metadata)
        watch.cancel()
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)

        async def ask() -> reflection_pb2.ServerReflectionRequest:  # type: ignore[misc]
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        names = set()
        async for answer in reflection.ServerReflectionInfo(ask()):
            names = {s.name for s in answer.list_services_response.service}
    assert {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names
    assert "floe.dataplane.v1.Uplink" in names


def test_metrics_on_app_and_metrics_port(floe_server: FloeServer) -> None:
    httpx.get(floe_server.url("/api/v2/ping"))
    on_app = httpx.get(floe_server.url("/metrics")).text
    on_port = httpx.get(f"http://127.0.0.1:{floe_server.metrics_port}/metrics").text
    for text in (on_app, on_port):
        assert 'floe_http_requests_total{method="GET",route="/api/v2/ping",status="200"}' in text
        assert "floe_quic_datagrams_dropped_total" in text
    assert httpx.get(f"http://127.0.0.1:{floe_server.metrics_port}/other").status_code == 404


async def test_websocket_real_client(floe_server: FloeServer) -> None:
    token = await asyncio.to_thread(_login, floe_server)
    url = f"ws://127.0.0.1:{floe_server.http_port}/api/v2/stream"
    async with websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}
    ) as ws:
        messages = [orjson.loads(await asyncio.wait_for(ws.recv(), 2)) for _ in range(12)]
    # through the pre-built frames (app/serving/wsframes.py): every heartbeat, in order, with
    # its own `dropped` spliced in
    beats = [m for m in messages if m["type"] == "heartbeat"]
    assert len(beats) >= 10
    assert [b["seq"] for b in beats] == list(range(beats[0]["seq"], beats[0]["seq"] + len(beats)))
    assert all(b["dropped"] == 0 for b in beats)


def test_chunked_body_over_limit_is_413(floe_server: FloeServer) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 65536  # 2.5 MiB > MAX_BODY_BYTES (1 MiB), no Content-Length

    response = httpx.post(
        floe_server.url("/api/v2/auth/login"),
        content=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_quic_socket_bound_when_http3_on(floe_server: FloeServer) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            udp.bind(("127.0.0.1", floe_server.https_port))
            bound_by_server = False
        except OSError:
            bound_by_server = True
    assert bound_by_server


def test_h2_request_ids_are_never_indexed(floe_server: FloeServer) -> None:
    """Unique per-response ids travel as HPACK never-indexed literals (app.serving.h2)."""
    import h2.connection
    import h2.events
    from hpack import NeverIndexedHeaderTuple

    conn = h2.connection.H2Connection()
    conn.initiate_connection()
    ids: list[bytes] = []
    with socket.create_connection(("127.0.0.1", floe_server.http_port), timeout=10) as sock:
        sock.sendall(conn.data_to_send())
        for _ in range(5):  # one connection, several requests: the table would fill with ids
            stream_id = conn.get_next_available_stream_id()
            conn.send_headers(stream_id, [(":method", "GET"), (":path", "/api/v2/ping"),
                                          (":scheme", "http"), (":authority", "localhost")],
                              end_stream=True)
            sock.sendall(conn.data_to_send())
            ended = False
            while not ended:
                data = sock.recv(65536)
                assert data, "server closed the connection"
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        rid = [h for h in event.headers if h[0] == b"x-request-id"]
                        assert len(rid) == 1
                        assert isinstance(rid[0], NeverIndexedHeaderTuple)
                        ids.append(rid[0][1])
                    elif isinstance(event, h2.events.StreamEnded):
                        ended = True
                sock.sendall(conn.data_to_send())
    assert len(set(ids)) == 5
    indexed = {name for name, _ in conn.decoder.header_table.dynamic_entries}
    assert b"x-request-id" not in indexed
    assert b"content-type" in indexed  # repeated headers still use the table
