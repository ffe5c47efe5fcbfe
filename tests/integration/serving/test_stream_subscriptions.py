"""WebSocket `/stream` subscriptions against a real `floe serve`: live flows with the
observer's filters, stats at a chosen interval, and bad messages that change nothing else."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
import websockets
from websockets.asyncio.client import ClientConnection

from app.api.subscriptions import MAX_SUBSCRIPTIONS
from floe.dataplane.v1 import uplink_pb2 as up
from floe.dataplane.v1 import uplink_pb2_grpc as up_grpc
from tests.support.server import FloeServer

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def server() -> Iterator[FloeServer]:
    env = {"FLOE_ENV": "development", "FLOE_ARGON2_PROFILE": "fast", "HTTP3_ENABLED": "false"}
    with FloeServer.start(env=env) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def admin(server: FloeServer) -> str:
    async with httpx.AsyncClient(base_url=server.url("/api/v2")) as http:
        response = await http.post("/auth/login", json={"email": "admin@localhost.local",
                                                        "password": "admin123"})
        token: str = response.json()["data"]["access_token"]
        return token


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def feed(server: FloeServer, admin: str) -> AsyncIterator[Any]:
    """A dataplane on node ws-1 (a bound key, a real uplink stream)."""
    async with httpx.AsyncClient(base_url=server.url("/api/v2")) as http:
        response = await http.post("/clients", headers={"Authorization": f"Bearer {admin}"},
                                   json={"name": "ws-feed", "scopes": ["dataplane:write"],
                                         "node_id": "ws-1"})
        key = response.json()["data"]["api_key"]
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    call = up_grpc.UplinkStub(channel).Connect(metadata=(("authorization", f"Bearer {key}"),))
    await call.write(up.UplinkMessage(hello=up.Hello(node_id="ws-1",
                                                     instance_id=uuid.uuid4().hex)))
    seq = [0]

    async def send(ports: list[int]) -> None:
        seq[0] += 1
        a = ipaddress.IPv6Address("::ffff:10.9.0.1").packed
        b = ipaddress.IPv6Address("::ffff:10.9.0.2").packed
        flows = [up.FlowRecord(addr_a=a, addr_b=b, port_a=40000 + i, port_b=port, proto=17,
                               interface="veth0", packets_ab=1, bytes_ab=80,
                               first_seen_unix_ns=seq[0] * 1000 + i,
                               last_seen_unix_ns=time.time_ns())
                 for i, port in enumerate(ports)]
        await call.write(up.UplinkMessage(batch=up.Batch(seq=seq[0], flows=flows)))
        while True:
            message = await asyncio.wait_for(call.read(), 10)
            if message.WhichOneof("body") == "ack" and message.ack.seq == seq[0]:
                return

    yield send
    call.cancel()
    await channel.close()


async def connect(server: FloeServer, token: str) -> ClientConnection:
    url = f"ws://127.0.0.1:{server.http_port}/api/v2/stream"
    return await websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"})


async def until(ws: ClientConnection, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
    """The next message for which `predicate` holds (heartbeats and others are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
        if predicate(message):
            return dict(message)


def of(kind: str, ident: str | None = None) -> Any:
    return lambda m: m.get("type") == kind and (ident is None or m.get("id") == ident)


async def test_flows_and_stats_subscriptions(server: FloeServer, admin: str, feed: Any) -> None:
    ws = await connect(server, admin)
    try:
        await ws.send(json.dumps({"type": "subscribe", "id": "dns", "topic": "flows",
                                  "filter": {"allow": [{"destination_port": [53],
                                                        "node": ["ws-1"]}]}}))
        assert (await until(ws, of("subscribed", "dns")))["topic"] == "flows"
        await ws.send(json.dumps({"type": "subscribe", "id": "s", "topic": "stats",
                                  "interval_ms": 200}))
        await until(ws, of("subscribed", "s"))
        await feed([53, 80, 53, 443])
        got = await until(ws, lambda m: of("flows", "dns")(m)
                          and any(e["type"] == "flow" for e in m["events"]))
        events = [e for e in got["events"] if e["type"] == "flow"]  # node events come too
        assert [(e["type"], e["dst_port"], e["kind"]) for e in events] == [
            ("flow", 53, "new"), ("flow", 53, "new")]
        first = events[0]
        assert (first["src"], first["dst"], first["proto"], first["node_id"]) == (
            "10.9.0.1", "10.9.0.2", 17, "ws-1")
        assert first["cursor"] < events[1]["cursor"] and "lost" not in got
        started = time.monotonic()
        stats = [await until(ws, of("stats", "s")) for _ in range(3)]
        assert time.monotonic() - started < 2.0  # every 200 ms, not every second
        assert {"interfaces", "totals"} <= set(stats[-1]["data"])

        await ws.send(json.dumps({"type": "unsubscribe", "id": "s"}))
        await until(ws, of("unsubscribed", "s"))
        await feed([53])
        got = await until(ws, of("flows", "dns"))
        assert [e["dst_port"] for e in got["events"]] == [53]
    finally:
        await ws.close()


async def test_history_then_live_with_number(server: FloeServer, admin: str,
                                             feed: Any) -> None:
    await feed([7001, 7002, 7003])
    ws = await connect(server, admin)
    try:
        await ws.send(json.dumps({"type": "subscribe", "id": "h", "topic": "flows",
                                  "filter": {"number": 2, "allow": [{"port": [7001, 7002, 7003,
                                                                             7004]}]}}))
        await until(ws, of("subscribed", "h"))
        history = await until(ws, of("flows", "h"))
        assert [e["dst_port"] for e in history["events"]] == [7002, 7003]
        await feed([7004])
        live = await until(ws, of("flows", "h"))
        assert [e["dst_port"] for e in live["events"]] == [7004]
        assert live["events"][0]["cursor"] > history["events"][-1]["cursor"]
    finally:
        await ws.close()


BAD = [
    ("not json", "invalid_json", None),
    (json.dumps({"type": "subscribe", "id": "x", "topic": "flows",
                 "filter": {"allow": [{"source_ip": ["10.0.0.999"]}]}}),
     "invalid_filter", "filter.allow[0].source_ip"),
    (json.dumps({"type": "subscribe", "id": "x", "topic": "flows",
                 "filter": {"allow": [{"port": [70000]}]}}), "invalid_filter",
     "filter.allow[0].port"),
    (json.dumps({"type": "subscribe", "id": "x", "topic": "flows",
                 "filter": {"bogus": 1}}), "invalid_filter", "filter.bogus"),
    (json.dumps({"type": "subscribe", "id": "x", "topic": "flows",
                 "filter": {"allow": "nope"}}), "invalid_filter", "filter"),
    (json.dumps({"type": "subscribe", "id": "x", "topic": "stats", "interval_ms": 10}),
     "invalid_interval", "interval_ms"),
    (json.dumps({"type": "subscribe", "id": "x", "topic": "weather"}), "invalid_topic",
     "topic"),
    (json.dumps({"type": "subscribe", "id": "", "topic": "flows"}), "invalid_id", "id"),
    (json.dumps({"type": "dance"}), "invalid_message", "type"),
    (json.dumps([1, 2]), "invalid_message", None),
    ("[" * 40 + "]" * 40, "too_deep", None),
    (json.dumps({"type": "subscribe", "id": "x", "pad": "y" * 20_000}), "message_too_large",
     None),
    (json.dumps({"type": "unsubscribe", "id": "nobody"}), "unknown_id", "id"),
    (json.dumps({"type": "subscribe", "id": "dns", "topic": "flows"}), "duplicate_id", "id"),
]


async def test_bad_messages_get_an_error_and_change_nothing(server: FloeServer, admin: str,
                                                            feed: Any) -> None:
    ws = await connect(server, admin)
    try:
        await ws.send(json.dumps({"type": "subscribe", "id": "dns", "topic": "flows",
                                  "filter": {"allow": [{"destination_port": [5353]}]}}))
        await until(ws, of("subscribed", "dns"))
        for raw, code, field in BAD:
            await ws.send(raw)
            error = await until(ws, of("error"))
            assert error["error"]["code"] == code, raw[:80]
            assert error["error"].get("field") == field, raw[:80]
        await feed([5353])  # the first subscription still delivers
        got = await until(ws, of("flows", "dns"))
        assert [e["dst_port"] for e in got["events"]] == [5353]
        for i in range(MAX_SUBSCRIPTIONS - 1):
            await ws.send(json.dumps({"type": "subscribe", "id": f"s{i}", "topic": "stats",
                                      "interval_ms": 60_000}))
            await until(ws, of("subscribed", f"s{i}"))
        await ws.send(json.dumps({"type": "subscribe", "id": "one-more", "topic": "stats"}))
        assert (await until(ws, of("error", "one-more")))["error"]["code"] == \
            "too_many_subscriptions"
    finally:
        await ws.close()


async def test_a_node_granted_user_subscribes_to_its_nodes_only(
        server: FloeServer, admin: str, feed: Any) -> None:
    headers = {"Authorization": f"Bearer {admin}"}
    async with httpx.AsyncClient(base_url=server.url("/api/v2"), headers=headers) as http:
        user = (await http.post("/users", json={"email": "ws-grant@example.com",
                                                "password": "ws-grant-pass", "roles": []})
                ).json()["data"]
        await http.post(f"/users/{user['id']}/grants", json={
            "role": "resource_viewer", "resource_type": "node", "resource_id": "other-node"})
        token = (await http.post("/auth/login", json={"email": "ws-grant@example.com",
                                                      "password": "ws-grant-pass"})
                 ).json()["data"]["access_token"]
    ws = await connect(server, token)
    try:
        await ws.send(json.dumps({"type": "subscribe", "id": "all", "topic": "flows",
                                  "filter": {"number": 1000}}))
        await until(ws, of("subscribed", "all"))
        await feed([9999])  # on ws-1, which this user may not see
        await ws.send(json.dumps({"type": "subscribe", "id": "st", "topic": "stats",
                                  "interval_ms": 100}))
        message = await until(ws, lambda m: m.get("id") in ("all", "st")
                              and m["type"] in ("flows", "stats"))
        assert message["type"] == "stats"  # no flows message arrived first
        assert all(i["node_id"] == "other-node" for i in message["data"]["interfaces"])
    finally:
        await ws.close()


async def test_a_flows_only_key_follows_flows_and_sees_no_stats(
        server: FloeServer, admin: str, feed: Any) -> None:
    async with httpx.AsyncClient(base_url=server.url("/api/v2")) as http:
        response = await http.post("/clients", headers={"Authorization": f"Bearer {admin}"},
                                   json={"name": "flows-only", "scopes": ["flows:read"]})
        key = response.json()["data"]["api_key"]
    ws = await connect(server, key)
    try:
        await ws.send(json.dumps({"type": "subscribe", "id": "f", "topic": "flows",
                                  "filter": {"allow": [{"destination_port": [6060]}]}}))
        await until(ws, of("subscribed", "f"))
        await ws.send(json.dumps({"type": "subscribe", "id": "s", "topic": "stats"}))
        error = await until(ws, of("error", "s"))
        assert error["error"]["code"] == "insufficient_scope"
        await feed([6060])
        got = await until(ws, lambda m: of("flows", "f")(m)
                          and any(e["type"] == "flow" for e in m["events"]))
        assert [e["dst_port"] for e in got["events"] if e["type"] == "flow"] == [6060]
        stats = await until(ws, of("stats"), timeout=5)  # the default per-second stats
        assert stats["data"]["interfaces"] == [] and stats["data"]["nodes"]["known"] == 0
    finally:
        await ws.close()


async def test_a_resumed_history_comes_in_bounded_messages(server: FloeServer, admin: str,
                                                           feed: Any) -> None:
    from app.api.subscriptions import MAX_EVENTS

    ports = [8100 + i % 50 for i in range(2 * MAX_EVENTS + 500)]
    await feed(ports)
    ws = await connect(server, admin)
    try:
        await ws.send(json.dumps({"type": "subscribe", "id": "h", "topic": "flows",
                                  "filter": {"number": len(ports),
                                             "allow": [{"port": sorted(set(ports))}]}}))
        await until(ws, of("subscribed", "h"))
        parts = [await until(ws, of("flows", "h")) for _ in range(3)]
        assert [len(p["events"]) for p in parts] == [MAX_EVENTS, MAX_EVENTS, 500]
        cursors = [e["cursor"] for p in parts for e in p["events"]]
        assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    finally:
        await ws.close()
