"""floe.observer.v1 against a real `floe serve`: real uplink streams feed it, real gRPC
clients consume it (follow, filters, history, resume, loss, auth, bad input, stats)."""

from __future__ import annotations

import asyncio
import ipaddress
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from google.protobuf.field_mask_pb2 import FieldMask

from app.grpc.auth import REAUTH_SECONDS
from floe.dataplane.v1 import uplink_pb2 as up
from floe.dataplane.v1 import uplink_pb2_grpc as up_grpc
from floe.observer.v1 import observer_pb2 as pb
from floe.observer.v1 import observer_pb2_grpc as pb_grpc
from tests.support.server import FloeServer

pytestmark = pytest.mark.asyncio(loop_scope="module")

RING = 4096
QUEUE = 2048


@pytest.fixture(scope="module")
def server() -> Iterator[FloeServer]:
    env = {"FLOE_ENV": "development", "FLOE_ARGON2_PROFILE": "fast", "HTTP3_ENABLED": "false",
           "FLOE_OBSERVER_RING_SIZE": str(RING), "FLOE_OBSERVER_QUEUE_EVENTS": str(QUEUE)}
    with FloeServer.start(env=env) as running:
        yield running


class Api:
    def __init__(self, server: FloeServer) -> None:
        self.http = httpx.AsyncClient(base_url=server.url("/api/v2"), timeout=10.0)
        self.admin = ""

    async def call(self, method: str, path: str, body: Any = None, token: str = "") -> Any:
        response = await self.http.request(
            method, path, json=body, headers={"Authorization": f"Bearer {token or self.admin}"})
        assert response.status_code < 300, response.text
        return response.json()["data"]

    async def key(self, scopes: list[str], node_id: str | None = None) -> tuple[int, str]:
        body: dict[str, Any] = {"name": uuid.uuid4().hex[:8], "scopes": scopes}
        if node_id:
            body["node_id"] = node_id
        data = await self.call("POST", "/clients", body)
        return data["id"], data["api_key"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(server: FloeServer) -> AsyncIterator[Api]:
    client = Api(server)
    response = await client.http.post("/auth/login", json={
        "email": "admin@localhost.local", "password": "admin123"})
    client.admin = response.json()["data"]["access_token"]
    yield client
    await client.http.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def channel(server: FloeServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as opened:
        yield opened


def md(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def packed(text: str) -> bytes:
    address = ipaddress.ip_address(text)
    return (ipaddress.IPv6Address(f"::ffff:{text}") if address.version == 4 else address).packed


def flow(sport: int, dport: int = 80, proto: int = 6, *, packets: int = 1, end: int = 0,
         src: str = "10.0.0.1", dst: str = "10.0.0.2") -> Any:
    return up.FlowRecord(addr_a=packed(src), addr_b=packed(dst), port_a=sport, port_b=dport,
                         proto=proto, interface="veth0", ifindex=2, packets_ab=packets,
                         bytes_ab=packets * 100, first_seen_unix_ns=1_000_000 + sport,
                         last_seen_unix_ns=time.time_ns(), end_reason=end)


class Feeder:
    """A dataplane: one uplink stream, batches acknowledged before `send` returns."""

    def __init__(self, channel: grpc.aio.Channel, key: str, node: str) -> None:
        self.call = up_grpc.UplinkStub(channel).Connect(metadata=md(key))
        self.node = node
        self.seq = 0

    async def open(self) -> Feeder:
        await self.call.write(up.UplinkMessage(hello=up.Hello(
            node_id=self.node, instance_id=uuid.uuid4().hex)))
        return self

    async def send(self, flows: list[Any], **batch: Any) -> None:
        self.seq += 1
        await self.call.write(up.UplinkMessage(batch=up.Batch(seq=self.seq, flows=flows,
                                                              **batch)))
        while True:
            message = await asyncio.wait_for(self.call.read(), 10)
            if message.WhichOneof("body") == "ack" and message.ack.seq == self.seq:
                return

    def close(self) -> None:
        self.call.cancel()


async def feeder(api: Api, channel: grpc.aio.Channel, node: str) -> Feeder:
    _, key = await api.key(["dataplane:write"], node_id=node)
    return await Feeder(channel, key, node).open()


async def events(stream: Any, count: int, *, kind: str = "flow",
                 timeout: float = 10.0) -> list[Any]:
    """Read until `count` events of `kind` arrived (others are kept too)."""
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while sum(1 for e in out if e.WhichOneof("event") == kind) < count:
        response = await asyncio.wait_for(stream.read(), max(0.1, deadline - time.monotonic()))
        assert response is not grpc.aio.EOF, f"stream ended after {len(out)} events"
        out.extend(response.events)
    return out


async def drain(stream: Any) -> list[Any]:
    """Every event of a stream that ends on its own (no follow)."""
    out: list[Any] = []
    async for response in stream:
        out.extend(response.events)
    return out


def flows_of(received: list[Any], node: str | None = None) -> list[Any]:
    return [e for e in received
            if e.WhichOneof("event") == "flow" and (node is None or e.node_id == node)]


async def test_followers_get_what_their_filters_keep_and_can_rebuild_totals(
        api: Api, channel: grpc.aio.Channel) -> None:
    stub = pb_grpc.ObserverStub(channel)
    mine = pb.FlowFilter(node=["follow-1"])
    web = stub.GetFlows(pb.GetFlowsRequest(follow=True, allow=[
        pb.FlowFilter(node=["follow-1"], destination_port=[80])]), metadata=md(api.admin))
    no_udp = stub.GetFlows(pb.GetFlowsRequest(follow=True, allow=[mine], deny=[
        pb.FlowFilter(protocol=["udp"])]), metadata=md(api.admin))
    everything = stub.GetFlows(pb.GetFlowsRequest(follow=True, allow=[mine]),
                               metadata=md(api.admin))
    await asyncio.sleep(0.2)  # the streams are registered
    dp = await feeder(api, channel, "follow-1")
    try:
        await dp.send([flow(1, 80, packets=2), flow(2, 53, 17, packets=1), flow(3, 443)])
        await dp.send([flow(1, 80, packets=5), flow(2, 53, 17, packets=4)])
        await dp.send([flow(1, 80, packets=9, end=up.END_REASON_TCP_FIN),
                       flow(3, 443, packets=3, end=up.END_REASON_IDLE_TIMEOUT)])
    finally:
        dp.close()
    got_web = flows_of(await events(web, 3))
    assert [(e.flow.flow.source_port, e.flow.kind) for e in got_web] == [
        (1, pb.EVENT_KIND_NEW), (1, pb.EVENT_KIND_UPDATE), (1, pb.EVENT_KIND_END)]
    assert sum(e.flow.flow.delta_packets for e in got_web) == got_web[-1].flow.flow.packets == 9
    got_no_udp = flows_of(await events(no_udp, 4))
    assert sorted(e.flow.flow.source_port for e in got_no_udp) == [1, 1, 1, 3, 3]
    got_all = await events(everything, 7)
    assert len(flows_of(got_all)) == 7
    cursors = [e.cursor for e in got_all]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    for stream in (web, no_udp, everything):
        stream.cancel()


async def test_history_last_first_and_an_unknown_node(api: Api,
                                                     channel: grpc.aio.Channel) -> None:
    stub = pb_grpc.ObserverStub(channel)
    dp = await feeder(api, channel, "history-1")
    try:
        await dp.send([flow(100 + i) for i in range(20)])
    finally:
        dp.close()
    node = [pb.FlowFilter(node=["history-1"])]
    last = await drain(stub.GetFlows(pb.GetFlowsRequest(number=5, allow=node),
                                     metadata=md(api.admin)))
    assert [e.flow.flow.source_port for e in flows_of(last)] == [115, 116, 117, 118, 119]
    first = await drain(stub.GetFlows(pb.GetFlowsRequest(number=3, first=True, allow=node),
                                      metadata=md(api.admin)))
    assert [e.flow.flow.source_port for e in flows_of(first)] == [100, 101, 102]
    unknown = await drain(stub.GetFlows(pb.GetFlowsRequest(
        allow=[pb.FlowFilter(node=["no-such-node"])]), metadata=md(api.admin)))
    assert flows_of(unknown) == []
    masked = await drain(stub.GetFlows(pb.GetFlowsRequest(
        number=1, allow=node, field_mask=FieldMask(paths=["source_port", "bytes"])),
        metadata=md(api.admin)))
    (only,) = flows_of(masked)
    assert (only.flow.flow.source_port, only.flow.flow.bytes) == (119, 100)
    assert (only.flow.flow.destination_port, only.flow.flow.source_ip) == (0, "")


async def test_resume_after_a_cursor_has_no_duplicate_and_no_gap(
        api: Api, channel: grpc.aio.Channel) -> None:
    stub = pb_grpc.ObserverStub(channel)
    node = [pb.FlowFilter(node=["resume-1"])]
    dp = await feeder(api, channel, "resume-1")
    try:
        first = stub.GetFlows(pb.GetFlowsRequest(follow=True, allow=node),
                              metadata=md(api.admin))
        await asyncio.sleep(0.2)
        await dp.send([flow(i) for i in range(10)])
        seen = flows_of(await events(first, 10))
        first.cancel()  # the consumer goes away…
        await dp.send([flow(i) for i in range(10, 25)])  # …while events go on
        resumed = stub.GetFlows(pb.GetFlowsRequest(follow=True, allow=node,
                                                   after=seen[-1].cursor),
                                metadata=md(api.admin))
        got = flows_of(await events(resumed, 15))
        await dp.send([flow(i) for i in range(25, 30)])
        got += flows_of(await events(resumed, 5))
        resumed.cancel()
    finally:
        dp.close()
    ports = [e.flow.flow.source_port for e in seen + got]
    assert ports == list(range(30))
    assert got[0].cursor > seen[-1].cursor


async def test_a_cursor_fallen_out_of_the_ring_gets_its_gap_counted(
        api: Api, channel: grpc.aio.Channel) -> None:
    stub = pb_grpc.ObserverStub(channel)
    status = await stub.ServerStatus(pb.ServerStatusRequest(), metadata=md(api.admin))
    mark = status.newest_cursor
    dp = await feeder(api, channel, "overflow-1")
    try:
        for start in range(0, 6000, 1000):
            await dp.send([flow(start + i) for i in range(1000)])
    finally:
        dp.close()
    status = await stub.ServerStatus(pb.ServerStatusRequest(), metadata=md(api.admin))
    got = await drain(stub.GetFlows(pb.GetFlowsRequest(after=mark), metadata=md(api.admin)))
    lost = [e for e in got if e.WhichOneof("event") == "lost_events"]
    assert lost[0] is got[0]
    assert lost[0].lost_events.source == pb.LOST_EVENT_SOURCE_RING_OVERFLOW
    gap = lost[0].lost_events.num_events_lost
    assert gap == status.oldest_cursor - (mark + 1) > 0
    assert lost[0].cursor == status.oldest_cursor - 1
    delivered = [e for e in got[1:] if mark < e.cursor <= status.newest_cursor]
    assert [e.cursor for e in delivered] == list(range(status.oldest_cursor,
                                                       status.newest_cursor + 1))
    assert gap + len(delivered) == status.newest_cursor - mark
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await drain(stub.GetFlows(pb.GetFlowsRequest(after=status.newest_cursor + 10),
                                  metadata=md(api.admin)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "after" in (caught.value.details() or "")


async def test_a_stalled_consumer_loses_only_its_own_events_and_is_told_exactly(
        api: Api, channel: grpc.aio.Channel, server: FloeServer) -> None:
    stub = pb_grpc.ObserverStub(channel)
    node = [pb.FlowFilter(node=["stall-1"])]
    # a consumer that never reads, on its own connection with fixed flow-control windows (BDP
    # probing would otherwise grow them to megabytes and hide the stall)
    stalled_channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}",
                                                options=[("grpc.http2.bdp_probe", 0)])
    stalled = pb_grpc.ObserverStub(stalled_channel).GetFlows(
        pb.GetFlowsRequest(follow=True, allow=node), metadata=md(api.admin))
    healthy = stub.GetFlows(pb.GetFlowsRequest(follow=True, allow=node), metadata=md(api.admin))
    await asyncio.sleep(0.2)
    total = 20_000
    dp = await feeder(api, channel, "stall-1")
    reader = asyncio.create_task(events(healthy, total, timeout=60))
    try:
        for start in range(0, total, 1000):
            await dp.send([flow(start + i, packets=1) for i in range(1000)])
        got = flows_of(await reader)
    finally:
        dp.close()
    assert len(got) == total  # the healthy consumer kept up: nothing lost
    # the stalled one wakes up: what it gets plus what it was told it lost is everything
    received: list[Any] = []
    deadline = time.monotonic() + 20
    while len(flows_of(received)) + sum(e.lost_events.num_events_lost for e in received
                                        if e.WhichOneof("event") == "lost_events") < total:
        assert time.monotonic() < deadline, "the stalled stream did not account for everything"
        response = await asyncio.wait_for(stalled.read(), 10)
        received.extend(response.events)
    lost = [e.lost_events for e in received if e.WhichOneof("event") == "lost_events"]
    assert lost and {e.source for e in lost} == {pb.LOST_EVENT_SOURCE_CONSUMER_QUEUE}
    assert len(flows_of(received)) + sum(e.num_events_lost for e in lost) == total
    stalled.cancel()
    healthy.cancel()
    await stalled_channel.close()
    status = await stub.ServerStatus(pb.ServerStatusRequest(), metadata=md(api.admin))
    assert status.consumer_events_lost >= sum(e.num_events_lost for e in lost)


async def test_auth_scopes_node_grants_and_revocation(api: Api,
                                                      channel: grpc.aio.Channel) -> None:
    stub = pb_grpc.ObserverStub(channel)

    async def code_of(call: Any) -> grpc.StatusCode:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await drain(call)
        return caught.value.code()

    assert await code_of(stub.GetFlows(pb.GetFlowsRequest())) == grpc.StatusCode.UNAUTHENTICATED
    assert await code_of(stub.GetFlows(pb.GetFlowsRequest(), metadata=md("floe_bogus_x"))) == \
        grpc.StatusCode.UNAUTHENTICATED
    _, stats_only = await api.key(["stats:read"])
    assert await code_of(stub.GetFlows(pb.GetFlowsRequest(), metadata=md(stats_only))) == \
        grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetNodes(pb.GetNodesRequest(), metadata=md(stats_only))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # a user whose only access is an owner grant on one node sees that node only
    user = await api.call("POST", "/users", {"email": "grantee@example.com",
                                             "password": "grantee-pass-1", "roles": []})
    await api.call("POST", f"/users/{user['id']}/grants", {
        "role": "owner", "resource_type": "node", "resource_id": "grant-a"})
    response = await api.http.post("/auth/login", json={"email": "grantee@example.com",
                                                        "password": "grantee-pass-1"})
    grantee = response.json()["data"]["access_token"]
    seen = stub.GetFlows(pb.GetFlowsRequest(follow=True), metadata=md(grantee))
    key_id, reader_key = await api.key(["flows:read"])
    revoked = stub.GetFlows(pb.GetFlowsRequest(follow=True), metadata=md(reader_key))
    await asyncio.sleep(0.2)
    a, b = await feeder(api, channel, "grant-a"), await feeder(api, channel, "grant-b")
    try:
        await b.send([flow(1)])
        await a.send([flow(2)])
        got = await events(seen, 1)
        assert {e.node_id for e in got} == {"grant-a"}  # node events of grant-b hidden too
        nodes = await stub.GetNodes(pb.GetNodesRequest(), metadata=md(grantee))
        assert [n.node_id for n in nodes.nodes] == ["grant-a"]
        # ... and no totals that describe other nodes' traffic or other consumers
        mine = await stub.ServerStatus(pb.ServerStatusRequest(), metadata=md(grantee))
        everyone = await stub.ServerStatus(pb.ServerStatusRequest(), metadata=md(api.admin))
        assert (mine.nodes_known, mine.num_flows_seen, mine.ring_fill, mine.consumers) == \
            (1, 0, 0, 0)
        assert everyone.num_flows_seen >= 2 and everyone.consumers >= 2
        await events(revoked, 2)
        await api.call("DELETE", f"/clients/{key_id}")
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            while True:
                await asyncio.wait_for(revoked.read(), REAUTH_SECONDS + 5)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert time.monotonic() - started < REAUTH_SECONDS + 3
    finally:
        a.close()
        b.close()
        seen.cancel()


@pytest.mark.parametrize(("request_fields", "field"), [
    ({"allow": [pb.FlowFilter(source_ip=["10.0.0.0/33"])]}, "allow[0].source_ip"),
    ({"allow": [pb.FlowFilter(destination_port=[65536])]}, "allow[0].destination_port"),
    ({"deny": [pb.FlowFilter(protocol=["bogus"])]}, "deny[0].protocol"),
    ({"since": {"seconds": 20}, "until": {"seconds": 10}}, "since"),
    ({"field_mask": FieldMask(paths=["source_ip", "password"])}, "field_mask"),
    ({"allow": [pb.FlowFilter(port=[1])] * 65}, "allow"),
])
async def test_bad_input_is_invalid_argument_naming_the_field(
        api: Api, channel: grpc.aio.Channel, request_fields: Any, field: str) -> None:
    stub = pb_grpc.ObserverStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await drain(stub.GetFlows(pb.GetFlowsRequest(follow=True, **request_fields),
                                  metadata=md(api.admin)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith(field)
    status = await stub.ServerStatus(pb.ServerStatusRequest(), metadata=md(api.admin))
    assert status.ring_capacity == RING  # the server goes on


async def test_watch_stats_nodes_and_status(api: Api, channel: grpc.aio.Channel) -> None:
    stub = pb_grpc.ObserverStub(channel)
    dp = await feeder(api, channel, "stats-1")
    try:
        await dp.send([], counters=[up.CounterSnapshot(
            interface="eth7", counter_epoch="e", taken_unix_ns=time.time_ns(),
            values={"packets": 1234, "bytes": 99_000, "dropped_rule": 4})])
        watch = stub.WatchStats(pb.WatchStatsRequest(interval_ms=100, node=["stats-1"]),
                                metadata=md(api.admin))
        started = time.monotonic()
        snapshots = [await asyncio.wait_for(watch.read(), 5) for _ in range(3)]
        watch.cancel()
        assert time.monotonic() - started >= 0.19  # the interval holds
        (iface,) = snapshots[-1].interfaces
        assert (iface.node_id, iface.interface, iface.packets, iface.bytes, iface.dropped) == (
            "stats-1", "eth7", 1234, 99_000, 4)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.WatchStats(pb.WatchStatsRequest(interval_ms=50),
                                  metadata=md(api.admin)).read()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        nodes = await stub.GetNodes(pb.GetNodesRequest(), metadata=md(api.admin))
        assert any(n.node_id == "stats-1" and n.connected for n in nodes.nodes)
    finally:
        dp.close()
    status = await stub.ServerStatus(pb.ServerStatusRequest(), metadata=md(api.admin))
    assert status.ring_capacity == RING and status.ring_fill >= RING  # filled by now
    assert status.num_flows_seen > RING and status.version
    assert status.nodes_known >= 1 and status.uptime_seconds > 0
