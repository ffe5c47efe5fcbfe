"""Two real `floe serve` instances, A and B, on one PostgreSQL database and one Redis (a
private redis-server per module, so restarting it touches no other suite): a dataplane
connected to A is seen, with exact totals, from B's REST, WebSocket and gRPC observer;
rules put on B reach it and its acknowledgement is seen from B; Redis restarts and trimmed
entries are counted, and counters heal."""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import pytest
import pytest_asyncio
import redis
import websockets

from floe.dataplane.v1 import uplink_pb2 as pb
from floe.observer.v1 import observer_pb2 as opb
from floe.observer.v1 import observer_pb2_grpc
from tests.integration.uplink.real import ADMIN, connect, mint_key, open_stream
from tests.support.databases import fresh_database
from tests.support.redis_server import RedisServer, redis_available
from tests.support.server import FloeServer

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not redis_available(), reason="redis-server is not installed"),
]


@dataclass
class Cluster:
    a: FloeServer
    b: FloeServer
    redis: RedisServer
    token: str  # the default admin's access token (valid on both: one database, one key)
    key: str  # a dataplane:write key bound to every node id
    env: dict[str, str] = field(default_factory=dict)  # what A and B were started with
    http: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    async def get(self, server: FloeServer, path: str) -> Any:
        response = await self.http[server.url("")].get(path)
        assert response.status_code == 200, response.text
        return response.json()["data"]


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    yield from fresh_database("postgresql", Path(tmp_path_factory.mktemp("db")))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cluster(database: dict[str, str]) -> AsyncIterator[Cluster]:
    server = RedisServer().start()
    env = {**database, "REDIS_URL": server.url, "HTTP3_ENABLED": "false",
           "FLOE_RELAY_HEARTBEAT_SECONDS": "0.5", "FLOE_RELAY_NODE_TTL_SECONDS": "2",
           "FLOE_RELAY_STREAM_MAXLEN": "100"}
    a = FloeServer.start(env=env, timeout=60)
    b = FloeServer.start(env=env, timeout=60)
    try:
        login = httpx.post(a.url("/api/v2/auth/login"), json=ADMIN, timeout=30)
        token = login.json()["data"]["access_token"]
        cluster = Cluster(a, b, server, token, mint_key(a, ["dataplane:write"]), env)
        for srv in (a, b):
            cluster.http[srv.url("")] = httpx.AsyncClient(
                base_url=srv.url(""), timeout=30, headers={"Authorization": f"Bearer {token}"})
        yield cluster
        for client in cluster.http.values():
            await client.aclose()
    finally:
        for srv in (a, b):
            srv.signal(signal.SIGCONT)
            srv.stop()
            srv.cleanup()
        server.stop()


def hello(node: str, instance: str = "") -> Any:
    return pb.Hello(node_id=node, instance_id=instance or uuid.uuid4().hex, version="test",
                    interfaces=[pb.InterfaceInfo(name="veth0", mode=pb.MODE_TAP,
                                                 attach_mode=pb.ATTACH_MODE_NATIVE)],
                    capabilities=["rules"])


def counters(packets: int) -> Any:
    return pb.CounterSnapshot(interface="veth0", counter_epoch="epoch-1",
                              values={"packets": packets, "bytes": packets * 100,
                                      "dropped_rule": packets // 10},
                              taken_unix_ns=time.time_ns())


def flow(n: int) -> Any:
    return pb.FlowRecord(addr_a=ipaddress.IPv6Address("::ffff:10.9.0.1").packed,
                         addr_b=ipaddress.IPv6Address("::ffff:10.9.0.2").packed,
                         port_a=30000 + n, port_b=443, proto=6, interface="veth0",
                         packets_ab=n, bytes_ab=n * 60, first_seen_unix_ns=5_000 + n)


class Dataplane:
    """A dataplane as the real one talks: Hello, numbered batches, acks, Applied."""

    def __init__(self, channel: grpc.aio.Channel, call: Any) -> None:
        self.channel = channel
        self.call = call
        self.rule_sets: list[Any] = []

    @classmethod
    async def open(cls, server: FloeServer, key: str, node: str,
                   instance: str = "") -> Dataplane:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        return cls(channel, await open_stream(channel, key, hello(node, instance)))

    async def read(self) -> Any:
        message = await asyncio.wait_for(self.call.read(), 10)
        if message.WhichOneof("body") == "rules":
            self.rule_sets.append(message.rules)
        return message

    async def send(self, seq: int, packets: int, flows: int = 0) -> None:
        batch = pb.Batch(seq=seq, counters=[counters(packets)],
                         flows=[flow(seq * 100 + n) for n in range(flows)])
        await self.call.write(pb.UplinkMessage(batch=batch))
        while (await self.read()).WhichOneof("body") != "ack":
            pass

    async def close(self) -> None:
        await self.call.done_writing()
        await self.channel.close()


async def eventually(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def interface(summary: dict[str, Any], node: str) -> dict[str, Any] | None:
    return next((i for i in summary["interfaces"] if i["node_id"] == node), None)


async def packets_on(cluster: Cluster, server: FloeServer, node: str) -> int:
    found = interface(await cluster.get(server, "/api/v2/stats/summary"), node)
    return found["packets"] if found else -1


async def node_on(cluster: Cluster, server: FloeServer, node: str) -> dict[str, Any] | None:
    nodes = await cluster.get(server, "/api/v2/nodes")
    return next((n for n in nodes if n["node_id"] == node), None)


async def test_b_shows_a_node_with_exact_totals(cluster: Cluster) -> None:
    dataplane = await Dataplane.open(cluster.a, cluster.key, "relay-stats")
    for seq in range(1, 6):
        await dataplane.send(seq, packets=100 * seq)

    async def exact() -> bool:
        found = interface(await cluster.get(cluster.b, "/api/v2/stats/summary"), "relay-stats")
        return found is not None and (found["packets"], found["bytes"], found["dropped"]) == (
            500, 50_000, 50)

    await eventually(exact)
    found = interface(await cluster.get(cluster.b, "/api/v2/stats/summary"), "relay-stats")
    assert found is not None and found["mode"] == "tap"
    relay_a = (await cluster.get(cluster.a, "/api/v2/stats/summary"))["relay"]
    node = await node_on(cluster, cluster.b, "relay-stats")
    assert node is not None and node["connected"] is True
    assert node["control_plane"] == relay_a["instance"] and node["last_applied_seq"] == 5
    assert "control_plane" not in (await node_on(cluster, cluster.a, "relay-stats") or {})
    relay_b = (await cluster.get(cluster.b, "/api/v2/stats/summary"))["relay"]
    assert relay_b["batches_applied"] >= 5 and relay_b["redis"] == "connected"
    assert relay_b["peers"] == 1 and relay_b["lost"] == {"entries": 0, "flow_records": 0}

    await dataplane.close()

    async def disconnected() -> bool:
        found = await node_on(cluster, cluster.b, "relay-stats")
        return found is not None and found["connected"] is False

    await eventually(disconnected)


async def test_websocket_on_b_streams_a_node(cluster: Cluster) -> None:
    dataplane = await Dataplane.open(cluster.a, cluster.key, "relay-ws")
    url = f"ws://127.0.0.1:{cluster.b.http_port}/api/v2/stream?access_token={cluster.token}"
    async with websockets.connect(url) as ws:
        await dataplane.send(1, packets=4242)
        deadline = time.monotonic() + 10
        seen = None
        while seen is None:
            assert time.monotonic() < deadline, "no stats with the node on B's stream"
            message = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
            if message["type"] == "stats":
                found = interface(message["data"], "relay-ws")
                if found is not None and found["packets"] == 4242:
                    seen = found
        assert seen["bytes"] == 424_200
        # a flow subscription on B follows the flows A's dataplane sends
        await ws.send(orjson.dumps({"type": "subscribe", "id": "f", "topic": "flows",
                                    "filter": {"allow": [{"node": ["relay-ws"]}]}}).decode())
        while orjson.loads(await asyncio.wait_for(ws.recv(), 5))["type"] != "subscribed":
            pass
        await dataplane.send(2, packets=4243, flows=2)
        ports: list[int] = []
        while len(ports) < 2:
            assert time.monotonic() < deadline + 10, "no flows on B's stream"
            message = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
            if message["type"] == "flows":
                ports += [e["src_port"] for e in message["events"] if "src_port" in e]
    assert sorted(ports) == [30200, 30201]
    await dataplane.close()


async def test_flows_on_b_rest_and_observer(cluster: Cluster) -> None:
    dataplane = await Dataplane.open(cluster.a, cluster.key, "relay-flows")
    await dataplane.send(1, packets=10, flows=3)
    await dataplane.send(2, packets=20, flows=2)

    async def flows() -> list[Any]:
        found = await cluster.get(cluster.b, "/api/v2/flows?node=relay-flows&limit=10")
        return found if len(found) == 5 else []

    records = await eventually(flows)
    assert sorted(r["src_port"] for r in records) == [30100, 30101, 30102, 30200, 30201]
    assert {r["dst"] for r in records} == {"10.9.0.2"}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{cluster.b.grpc_port}") as channel:
        stub = observer_pb2_grpc.ObserverStub(channel)
        metadata = (("authorization", f"Bearer {cluster.token}"),)
        request = opb.GetFlowsRequest(number=10, allow=[opb.FlowFilter(node=["relay-flows"])])
        ports = []
        async for response in stub.GetFlows(request, metadata=metadata):
            ports += [e.flow.flow.source_port for e in response.events if e.HasField("flow")]
        nodes = await stub.GetNodes(opb.GetNodesRequest(), metadata=metadata)
    assert sorted(ports) == [30100, 30101, 30102, 30200, 30201]
    assert any(n.node_id == "relay-flows" and n.connected for n in nodes.nodes)
    await dataplane.close()


async def test_rules_put_on_b_reach_a_dataplane_and_ack_is_seen_on_b(cluster: Cluster) -> None:
    dataplane = await Dataplane.open(cluster.a, cluster.key, "relay-rules")
    await dataplane.send(1, packets=1)
    body = {"default_action": "allow", "rules": [{"id": 7, "action": "deny", "port": 9999}]}
    response = await cluster.http[cluster.b.url("")].put("/api/v2/rules", json=body)
    assert response.status_code == 200, response.text
    generation = response.json()["data"]["generation"]
    deadline = time.monotonic() + 10
    while not any(r.generation == generation for r in dataplane.rule_sets):
        assert time.monotonic() < deadline, "the rule set did not reach the dataplane on A"
        await dataplane.read()
    pushed = next(r for r in dataplane.rule_sets if r.generation == generation)
    assert [rule.id for rule in pushed.rules] == [7]
    await dataplane.call.write(pb.UplinkMessage(applied=pb.Applied(
        generation=generation, kind=pb.Applied.KIND_RULES, ok=True)))

    async def acked_on_b() -> bool:
        node = await node_on(cluster, cluster.b, "relay-rules")
        return node is not None and node["rules_generation_applied"] == generation

    await eventually(acked_on_b)
    # a rule's hits are accepted on B too (it loaded the same set from the database)
    await dataplane.call.write(pb.UplinkMessage(batch=pb.Batch(
        seq=2, counters=[counters(5)],
        rule_hits=[pb.RuleHits(rule_id=7, packets=3, bytes=180, interface="veth0",
                               counter_epoch="epoch-1")])))
    while (await dataplane.read()).WhichOneof("body") != "ack":
        pass

    async def hits_on_b() -> bool:
        found = interface(await cluster.get(cluster.b, "/api/v2/stats/summary"), "relay-rules")
        return found is not None and found["rule_hits"].get("7") == {"packets": 3, "bytes": 180}

    await eventually(hits_on_b)
    await dataplane.close()


async def test_freshness_a_batch_on_a_is_visible_on_b(cluster: Cluster) -> None:
    """Measured: a batch acknowledged by A → B's /stats/summary shows it (polled)."""
    dataplane = await Dataplane.open(cluster.a, cluster.key, "relay-fresh")
    await dataplane.send(1, packets=1)
    await eventually(lambda: _is(cluster, cluster.b, "relay-fresh", 1))
    delays = []
    for seq in range(2, 52):
        await dataplane.send(seq, packets=seq)
        start = time.perf_counter()
        while await packets_on(cluster, cluster.b, "relay-fresh") != seq:
            assert time.perf_counter() - start < 5
        delays.append((time.perf_counter() - start) * 1000)
    delays.sort()
    p50, p99 = statistics.median(delays), delays[int(0.99 * len(delays))]
    relay_b = (await cluster.get(cluster.b, "/api/v2/stats/summary"))["relay"]
    print(f"\nfreshness A ack -> B /stats/summary over {len(delays)} batches: "
          f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {delays[-1]:.1f} ms; "
          f"B's stream lag {relay_b['lag_ms']}")
    assert p99 < 1000
    await dataplane.close()


async def _true(value: Any) -> bool:
    return bool(value)


async def _is(cluster: Cluster, server: FloeServer, node: str, packets: int) -> bool:
    return await packets_on(cluster, server, node) == packets


async def test_redis_restart_is_counted_and_counters_heal(cluster: Cluster) -> None:
    dataplane = await Dataplane.open(cluster.a, cluster.key, "relay-restart")
    for seq in (1, 2, 3):
        await dataplane.send(seq, packets=100 * seq, flows=1)
    await eventually(lambda: _is(cluster, cluster.b, "relay-restart", 300))
    before_b = (await cluster.get(cluster.b, "/api/v2/stats/summary"))["relay"]
    # a flow follower on B: told what the relay lost, as a LostEvent
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{cluster.b.grpc_port}")
    follow = observer_pb2_grpc.ObserverStub(channel).GetFlows(
        opb.GetFlowsRequest(follow=True), metadata=(("authorization",
                                                     f"Bearer {cluster.token}"),))
    relay_lost: list[Any] = []

    async def watch() -> None:
        async for response in follow:
            relay_lost.extend(e.lost_events for e in response.events
                              if e.HasField("lost_events")
                              and e.lost_events.source == opb.LOST_EVENT_SOURCE_RELAY)

    watcher = asyncio.create_task(watch())

    cluster.redis.stop()  # Redis gone: A still applies its dataplane's batches
    for seq in (4, 5, 6):
        await dataplane.send(seq, packets=100 * seq, flows=1)
    assert await packets_on(cluster, cluster.a, "relay-restart") == 600
    await asyncio.sleep(4)  # the publisher tries (and fails) while Redis is down
    cluster.redis.start()  # back, empty (nothing persisted)

    async def reconnected() -> bool:
        relay = (await cluster.get(cluster.b, "/api/v2/stats/summary"))["relay"]
        return relay["redis"] == "connected" and relay["resets"]["redis_restart"] >= 1

    await eventually(reconnected, 20)
    await dataplane.send(7, packets=700, flows=1)
    await eventually(lambda: _is(cluster, cluster.b, "relay-restart", 700), 20)
    relay_a = (await cluster.get(cluster.a, "/api/v2/stats/summary"))["relay"]
    relay_b = (await cluster.get(cluster.b, "/api/v2/stats/summary"))["relay"]
    assert relay_a["unpublished"]["redis_error"] >= 3  # A counts what it could not publish
    assert relay_a["unpublished_batches"] == 3 and relay_a["unpublished_flow_records"] == 3
    lost = relay_b["lost"]
    assert lost["entries"] - before_b["lost"]["entries"] >= 3  # B counts what it never got
    assert lost["flow_records"] - before_b["lost"]["flow_records"] == 3  # seqs 4-6: one each
    response = await cluster.http[cluster.b.url("")].get("/metrics")
    assert 'floe_relay_resets_total{reason="redis_restart"}' in response.text
    assert "floe_relay_lost_flow_records_total 3.0" in response.text
    await eventually(lambda: _true(relay_lost))
    assert sum(e.num_events_lost for e in relay_lost) == 3
    assert relay_lost[0].detail == relay_a["instance"]
    watcher.cancel()
    await channel.close()

    # A flush (the stream deleted under both readers) loses nothing that was already read
    redis.Redis(port=cluster.redis.port).flushall()
    await dataplane.send(8, packets=800, flows=1)
    await eventually(lambda: _is(cluster, cluster.b, "relay-restart", 800))
    await dataplane.close()


async def test_entries_trimmed_before_b_read_them_are_counted(cluster: Cluster) -> None:
    """MAXLEN (100 here) trims entries a stalled reader has not read: counted, healed."""
    dataplane = await Dataplane.open(cluster.a, cluster.key, "relay-trim")
    await dataplane.send(1, packets=1, flows=1)
    await eventually(lambda: _is(cluster, cluster.b, "relay-trim", 1))
    before = (await cluster.get(cluster.b, "/api/v2/stats/summary"))["relay"]["lost"]
    cluster.b.signal(signal.SIGSTOP)
    try:
        for seq in range(2, 402):
            await dataplane.send(seq, packets=seq, flows=1)
    finally:
        cluster.b.signal(signal.SIGCONT)
    await eventually(lambda: _is(cluster, cluster.b, "relay-trim", 401), 20)
    lost = (await cluster.get(cluster.b, "/api/v2/stats/summary"))["relay"]["lost"]
    assert lost["entries"] > before["entries"]
    assert 0 < lost["flow_records"] - before["flow_records"] <= 400
    await dataplane.close()


async def test_an_instance_started_later_learns_nodes_and_rules(cluster: Cluster) -> None:
    """C starts while a node is live on A: the heartbeat tells it the node (with its
    interfaces), the next batch the exact totals; it loaded the rules at start-up."""
    dataplane = await Dataplane.open(cluster.a, cluster.key, "relay-late")
    await dataplane.send(1, packets=10)
    c = await asyncio.to_thread(FloeServer.start, env=cluster.env, timeout=60)
    try:
        cluster.http[c.url("")] = httpx.AsyncClient(
            base_url=c.url(""), timeout=30, headers={"Authorization": f"Bearer {cluster.token}"})

        async def known_on_c() -> bool:
            node = await node_on(cluster, c, "relay-late")
            return node is not None and node["connected"] and node["interfaces"] == [
                {"name": "veth0", "mode": "tap", "attach_mode": "native",
                 "xsk_mode": "unspecified"}]

        await eventually(known_on_c, 15)
        await dataplane.send(2, packets=20)
        await eventually(lambda: _is(cluster, c, "relay-late", 20))
        rules_a = await cluster.get(cluster.a, "/api/v2/rules")
        assert (await cluster.get(c, "/api/v2/rules"))["generation"] == rules_a["generation"]

        async def hears_both() -> bool:  # A and B, each within a heartbeat
            return (await cluster.get(c, "/api/v2/stats/summary"))["relay"]["peers"] == 2

        await eventually(hears_both)
    finally:
        await cluster.http.pop(c.url("")).aclose()
        await asyncio.to_thread(c.stop)
        c.cleanup()
        await dataplane.close()


async def test_one_node_one_stream_across_instances(cluster: Cluster) -> None:
    """Another dataplane may not take a node live on A by connecting to B; the same
    dataplane process reconnecting through B (its stream to A broke) resumes where A was."""
    instance = uuid.uuid4().hex
    first = await Dataplane.open(cluster.a, cluster.key, "relay-claim", instance)
    for seq in (1, 2, 3):
        await first.send(seq, packets=seq)
    await eventually(lambda: _is(cluster, cluster.b, "relay-claim", 3))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{cluster.b.grpc_port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await open_stream(channel, cluster.key, hello("relay-claim"))
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "control-plane instance" in (refused.value.details() or "")
    await first.channel.close()  # the stream to A breaks; the same process comes to B
    async with grpc.aio.insecure_channel(f"127.0.0.1:{cluster.b.grpc_port}") as channel:
        call = connect(channel, cluster.key)
        await call.write(pb.UplinkMessage(hello=hello("relay-claim", instance)))
        welcome = await asyncio.wait_for(call.read(), 10)
        assert welcome.welcome.last_applied_seq == 3  # B applied them from the relay
        await call.write(pb.UplinkMessage(batch=pb.Batch(seq=4, counters=[counters(4)])))
        await eventually(lambda: _is(cluster, cluster.b, "relay-claim", 4))
        await eventually(lambda: _is(cluster, cluster.a, "relay-claim", 4))
        await call.done_writing()


async def test_node_of_a_silent_instance_shows_disconnected_on_b(cluster: Cluster) -> None:
    """A dies without a word (SIGKILL): B's view of its node expires after the TTL."""
    dataplane = await Dataplane.open(cluster.a, cluster.key, "relay-dead")
    await dataplane.send(1, packets=1)

    async def connected_on_b() -> bool:
        found = await node_on(cluster, cluster.b, "relay-dead")
        return found is not None and found["connected"] is True

    await eventually(connected_on_b)
    cluster.a.stop(sig=signal.SIGKILL)

    async def gone_on_b() -> bool:
        found = await node_on(cluster, cluster.b, "relay-dead")
        return found is not None and found["connected"] is False

    started = time.monotonic()
    await eventually(gone_on_b, 10)
    assert time.monotonic() - started < 5  # TTL 2 s + a heartbeat
    await dataplane.channel.close()
