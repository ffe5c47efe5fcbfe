"""The dataplane's /healthz listener in process: its setting, answers, envelopes and bounds.

The listener is the real one on a loopback socket, over a real `Runner` that is not running
(no tick yet: "starting", 503) or whose state a test sets as a tick would. What it reports of
a running dataplane process is tested in tests/e2e/test_dataplane_health.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.config import ConfigError, load_settings
from dataplane.config import load_dataplane_config
from dataplane.health import MAX_CONNECTIONS, MAX_REQUEST_BYTES, REQUEST_TIMEOUT, HealthServer
from dataplane.runner import Runner
from floe.dataplane.v1 import uplink_pb2 as pb


def _config(tmp_path: Path, **env: str) -> Any:
    return load_dataplane_config(load_settings({"FLOE_DATA_DIR": str(tmp_path), **env}))


def test_off_by_default_and_on_loopback(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert (config.health_port, config.health_address) == (0, "127.0.0.1")
    config = _config(tmp_path, FLOE_DATAPLANE_HEALTH_PORT="9188",
                     FLOE_DATAPLANE_HEALTH_ADDRESS="::1")
    assert (config.health_port, config.health_address) == (9188, "::1")


@pytest.mark.parametrize(("name", "value"), [
    ("FLOE_DATAPLANE_HEALTH_PORT", "http"),
    ("FLOE_DATAPLANE_HEALTH_PORT", "65536"),
    ("FLOE_DATAPLANE_HEALTH_PORT", "-1"),
    ("FLOE_DATAPLANE_HEALTH_ADDRESS", "localhost"),
    ("FLOE_DATAPLANE_HEALTH_ADDRESS", "10.0.0.300"),
])
def test_a_bad_value_names_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        _config(tmp_path, **{name: value})


@pytest.fixture
async def health(tmp_path: Path) -> AsyncIterator[HealthServer]:
    runner = Runner(_config(tmp_path), "pcap", None, pcap_path=tmp_path / "none.pcap")
    server = HealthServer(runner, "127.0.0.1", 0)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def _request(server: HealthServer, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(raw)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), headers, body


async def _closed(reader: asyncio.StreamReader, within: float = 5) -> bool:
    """The server closed without answering: EOF, or a reset when our bytes went unread."""
    try:
        return await asyncio.wait_for(reader.read(), within) == b""
    except ConnectionResetError:
        return True


async def _get(server: HealthServer, path: str = "/healthz") -> tuple[int, dict[str, Any]]:
    status, headers, body = await _request(
        server, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) == len(body)
    return status, json.loads(body)


async def test_before_the_first_tick_it_is_starting(health: HealthServer) -> None:
    status, body = await _get(health)
    assert status == 503 and body["status"] == "success"
    data = body["data"]
    assert data["status"] == "failing"
    assert data["problems"][0].startswith("starting")
    assert (data["mode"], data["xdp"], data["attached"]) == ("pcap", False, None)
    assert data["uplink"]["connected"] is False and data["uplink"]["last_ack_age_seconds"] is None
    assert body["meta"]["version"] == 2


async def test_ticking_with_a_live_uplink_is_ok_and_loss_is_named_by_source(
    health: HealthServer,
) -> None:
    runner = health.runner
    runner.last_tick_monotonic = time.monotonic()
    runner.last_losses = [
        pb.LossReport(source=pb.LOSS_SOURCE_AFXDP_RING, count=7, detail="rx_ring_full"),
        pb.LossReport(source=pb.LOSS_SOURCE_PARSE_MALFORMED, count=2, detail="malformed")]
    runner.uplink.stats.connected = True
    runner.uplink._ack(5)  # what a received Ack does
    status, body = await _get(health)
    data = body["data"]
    assert status == 200 and data["status"] == "ok" and data["problems"] == []
    assert 0 <= data["uplink"]["last_ack_age_seconds"] < 1 and data["uplink"]["acked_seq"] == 5
    assert data["loss"] == {"total": 9, "by_source": {
        "afxdp_ring:rx_ring_full": 7, "parse_malformed:malformed": 2,
        "uplink_buffer:batches": 0, "uplink_buffer:flow_records": 0}}


async def test_a_lost_uplink_degrades_but_a_stall_fails(health: HealthServer) -> None:
    runner = health.runner
    runner.last_tick_monotonic = time.monotonic()
    runner.uplink.stats.last_error = "UNAVAILABLE: connection refused"
    status, body = await _get(health)
    assert status == 200 and body["data"]["status"] == "degraded"
    assert body["data"]["problems"] == ["uplink disconnected: UNAVAILABLE: connection refused"]
    runner.last_tick_monotonic = time.monotonic() - health.stall_seconds - 1
    status, body = await _get(health)
    assert status == 503 and body["data"]["status"] == "failing"
    assert body["data"]["problems"][0].startswith("stalled")


async def test_other_paths_and_methods_get_the_error_envelope(health: HealthServer) -> None:
    status, body = await _get(health, "/metrics")
    assert status == 404 and body["status"] == "error"
    assert body["error"]["code"] == "not_found"
    status, headers, raw = await _request(health, b"POST /healthz HTTP/1.1\r\n\r\n")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert json.loads(raw)["error"]["code"] == "method_not_allowed"
    status, headers, raw = await _request(health, b"HEAD /healthz?x=1 HTTP/1.1\r\n\r\n")
    assert status == 503 and raw == b"" and int(headers["Content-Length"]) > 0


async def test_an_oversized_or_garbled_request_is_closed_and_counted(
    health: HealthServer,
) -> None:
    for raw in (b"GET /healthz HTTP/1.1\r\nX: " + b"a" * MAX_REQUEST_BYTES + b"\r\n\r\n",
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS, say
                b"GET /healthz SPDY/3\r\n\r\n"):
        reader, writer = await asyncio.open_connection("127.0.0.1", health.port)
        writer.write(raw)
        assert await _closed(reader)
        writer.close()
    assert health.refused.requests == 3


async def test_connections_beyond_the_bound_are_closed_and_counted(
    health: HealthServer,
) -> None:
    """MAX_CONNECTIONS silent clients hold their slots; the next is closed at once (not after
    REQUEST_TIMEOUT), and once the silent ones time out a request is answered again."""
    held = [await asyncio.open_connection("127.0.0.1", health.port)
            for _ in range(MAX_CONNECTIONS)]
    for _ in range(100):  # bounded: until the server has accepted every held connection
        if health._active == MAX_CONNECTIONS:
            break
        await asyncio.sleep(0.01)
    assert health._active == MAX_CONNECTIONS
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", health.port)
    writer.write(b"GET /healthz HTTP/1.1\r\n\r\n")
    assert await _closed(reader)
    assert time.monotonic() - started < REQUEST_TIMEOUT
    writer.close()
    assert health.refused.connections == 1
    for held_reader, _ in held:  # the server gives up on them after REQUEST_TIMEOUT
        assert await _closed(held_reader, REQUEST_TIMEOUT + 3)
    for _, held_writer in held:
        held_writer.close()
    assert health.refused.requests == MAX_CONNECTIONS
    status, body = await _get(health)
    assert status == 503 and body["data"]["refused"] == {
        "connections": 1, "requests": MAX_CONNECTIONS}
