"""WebSocket /api/v2/stream through Quart's test client: auth, heartbeats, drops, close."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from quart import Quart
from quart.testing.connections import WebsocketResponseError

from app.hub import Hub
from app.runtime import get_runtime
from tests.integration.serving.conftest import NOSCOPE_TOKEN, READER_TOKEN


async def test_heartbeats_with_bearer_header(serving_app: Quart) -> None:
    client = serving_app.test_client()
    headers = {"Authorization": f"Bearer {READER_TOKEN}"}
    async with client.websocket("/api/v2/stream", headers=headers) as ws:
        first = orjson.loads(await asyncio.wait_for(ws.receive(), 2))
        second = orjson.loads(await asyncio.wait_for(ws.receive(), 2))
    assert first["type"] == "heartbeat" and second["seq"] == first["seq"] + 1
    assert set(first) == {"type", "seq", "ts", "dropped"}


async def test_query_token_and_stats_topic(serving_app: Quart) -> None:
    client = serving_app.test_client()
    hub: Hub = get_runtime(serving_app).components["hub"]
    async with client.websocket(f"/api/v2/stream?access_token={READER_TOKEN}") as ws:
        await asyncio.wait_for(ws.receive(), 2)  # subscribed once a heartbeat arrives
        hub.publish({"type": "stats", "pps": 5})
        for _ in range(5):
            message = orjson.loads(await asyncio.wait_for(ws.receive(), 2))
            if message["type"] == "stats":
                break
        assert message == {"type": "stats", "pps": 5}


@pytest.mark.parametrize(
    ("query", "status"),
    [("", 401), (f"?access_token={NOSCOPE_TOKEN}", 403), ("?access_token=bad", 401)],
)
async def test_refused_without_scope(serving_app: Quart, query: str, status: int) -> None:
    client = serving_app.test_client()
    with pytest.raises(WebsocketResponseError) as info:
        async with client.websocket(f"/api/v2/stream{query}") as ws:
            await asyncio.wait_for(ws.receive(), 2)
    assert info.value.response.status_code == status


async def test_close_all_stops_the_stream(serving_app: Quart) -> None:
    """Quart's test client drops close codes; 1001 itself is checked over a real socket."""
    client = serving_app.test_client()
    hub: Hub = get_runtime(serving_app).components["hub"]
    async with client.websocket(f"/api/v2/stream?access_token={READER_TOKEN}") as ws:
        await asyncio.wait_for(ws.receive(), 2)
        assert hub.subscriber_count == 1
        hub.close_all(1001)
        with pytest.raises(TimeoutError):
            for _ in range(10):  # at most the already-queued heartbeat, then nothing
                await asyncio.wait_for(ws.receive(), 0.3)
    assert hub.subscriber_count == 0
