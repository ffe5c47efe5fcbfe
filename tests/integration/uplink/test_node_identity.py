"""One node, one identity, against a real `floe serve`: a second live stream for a node id is
refused with ALREADY_EXISTS naming the node, its peer and since when, and the first keeps its
session, rule sets and figures; only a stream silent past INGEST_TAKEOVER_GRACE, or the same
dataplane process reconnecting, is replaced (and told so)."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from app.nodeid import demo_node_id
from dataplane.uplink import UplinkClient
from floe.dataplane.v1 import uplink_pb2 as pb
from tests.integration.uplink.real import admin, connect, mint_key, open_stream, target, wait
from tests.integration.uplink.test_ingest_bounds import metric
from tests.support.server import FloeServer

pytestmark = pytest.mark.asyncio(loop_scope="module")

FAST = {"HTTP3_ENABLED": "false", "FLOE_ARGON2_PROFILE": "fast"}
GRACE = 2.0


@pytest.fixture(scope="module")
def server() -> Iterator[FloeServer]:
    with FloeServer.start(env={**FAST, "INGEST_TAKEOVER_GRACE": str(GRACE)}) as running:
        yield running


@pytest.fixture(scope="module")
def key(server: FloeServer) -> str:
    return mint_key(server, ["dataplane:write"])


def hello(node: str, instance: str = "") -> Any:
    return pb.Hello(node_id=node, instance_id=instance or uuid.uuid4().hex, version="test")


def node_view(server: FloeServer, node: str) -> dict[str, Any]:
    with admin(server) as client:
        nodes = client.get("/api/v2/nodes").json()["data"]
    found: dict[str, Any] = next(n for n in nodes if n["node_id"] == node)
    return found


def readiness(server: FloeServer) -> str:
    detail: str = httpx.get(server.url("/readyz"), timeout=10).json()["checks"]["dataplane"][
        "detail"]
    return detail


async def refused(channel: grpc.aio.Channel, key: str, hello_message: Any) -> Any:
    call = connect(channel, key)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.write(pb.UplinkMessage(hello=hello_message))
        await call.read()
    return caught.value


async def ended(call: Any) -> grpc.aio.AioRpcError:
    """How the server ended `call` (whatever it still had queued is read first), within 10 s."""
    async def drain() -> None:
        while (await call.read()) is not grpc.aio.EOF:
            pass

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await asyncio.wait_for(drain(), 10)
    return caught.value


async def batch(call: Any, seq: int, packets: int) -> None:
    """Send one counter snapshot and read up to its ack (rule sets may come first)."""
    snap = pb.CounterSnapshot(interface="eth0", counter_epoch="e1", values={"packets": packets})
    await call.write(pb.UplinkMessage(batch=pb.Batch(seq=seq, counters=[snap])))
    while (reply := await call.read()).WhichOneof("body") != "ack":
        pass
    assert reply.ack.seq == seq


async def test_a_second_live_dataplane_is_refused_and_the_first_keeps_everything(
        server: FloeServer, key: str) -> None:
    first_hello = hello("dup-a")
    async with grpc.aio.insecure_channel(target(server)) as channel:
        first = await open_stream(channel, key, first_hello)
        await batch(first, 1, 100)
        view = node_view(server, "dup-a")
        since = view["connected_since"]
        ready_before = readiness(server)

        error = await refused(channel, key, hello("dup-a"))
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS
        details = error.details() or ""
        assert "node 'dup-a' is already connected from " + view["peer"] in details
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(since)))
        assert f"since {stamp}+00:00" in details and first_hello.instance_id in details
        assert "--node-id" in details and "INGEST_TAKEOVER_GRACE=2" in details

        # the first keeps its session, its figures and its rule updates
        after = node_view(server, "dup-a")
        assert after["connected"] is True and after["instance_id"] == first_hello.instance_id
        assert after["connected_since"] == since and after["peer"] == view["peer"]
        assert after["refused"] == {"node_in_use": 1} and after["takeovers"] == 0
        assert readiness(server) == ready_before
        with admin(server) as client:
            put = client.put("/api/v2/rules", json={"rules": [
                {"id": 41, "action": "deny", "src": "192.0.2.0/24"}]})
            assert put.status_code == 200, put.text
        while (message := await first.read()).WhichOneof("body") != "rules" or not any(
                rule.id == 41 for rule in message.rules.rules):
            pass
        await first.write(pb.UplinkMessage(applied=pb.Applied(
            generation=message.rules.generation, kind=pb.Applied.KIND_RULES, ok=True)))
        await batch(first, 2, 250)
        assert wait(lambda: node_view(server, "dup-a")["rules_generation_applied"]
                    == message.rules.generation)
        with admin(server) as client:
            summary = client.get("/api/v2/stats/summary").json()["data"]
        (iface,) = [i for i in summary["interfaces"] if i["node_id"] == "dup-a"]
        assert iface["packets"] == 250
        assert metric(server, "floe_node_refused_total", node="dup-a", bound="node_in_use") == 1
        await first.done_writing()


async def test_a_stream_silent_past_the_grace_is_replaced_and_told(
        server: FloeServer, key: str) -> None:
    async with grpc.aio.insecure_channel(target(server)) as channel:
        first = await open_stream(channel, key, hello("dup-b"))
        await batch(first, 1, 10)
        heard = time.monotonic()
        assert (await refused(channel, key, hello("dup-b"))).code() == (
            grpc.StatusCode.ALREADY_EXISTS)
        await asyncio.sleep(max(0.0, heard + GRACE + 0.2 - time.monotonic()))  # the grace
        second_hello = hello("dup-b")
        second = await open_stream(channel, key, second_hello)
        error = await ended(first)
        assert error.code() == grpc.StatusCode.ABORTED
        assert "this stream was replaced: a new stream from " in (error.details() or "")
        view = node_view(server, "dup-b")
        assert view["instance_id"] == second_hello.instance_id and view["takeovers"] == 1
        assert view["connected"] is True
        await batch(second, 1, 20)
        await second.done_writing()


async def test_the_same_dataplane_reconnecting_replaces_its_old_stream(
        server: FloeServer, key: str) -> None:
    """A dataplane whose stream broke on its side reconnects at once, even while the control
    plane still holds the old stream: same instance, same key."""
    same = hello("dup-c")
    async with grpc.aio.insecure_channel(target(server)) as channel:
        old = await open_stream(channel, key, same)
        new = await open_stream(channel, key, same)
        error = await ended(old)
        assert error.code() == grpc.StatusCode.ABORTED
        assert "the same dataplane" in (error.details() or "")
        # another key claiming the same instance is still a second dataplane
        other = mint_key(server, ["dataplane:write"])
        assert (await refused(channel, other, same)).code() == grpc.StatusCode.ALREADY_EXISTS
        await new.done_writing()


async def test_a_refused_dataplane_says_so_and_takes_over_when_the_first_stops(
        server: FloeServer, key: str) -> None:
    async with grpc.aio.insecure_channel(target(server)) as channel:
        first = await open_stream(channel, key, hello("dup-d"))
        second = UplinkClient(target(server), lambda: key, lambda: hello("dup-d"),
                              backoff_initial=0.05, backoff_max=0.2)
        task = asyncio.create_task(second.run())
        try:
            deadline = time.monotonic() + 10
            while "ALREADY_EXISTS" not in second.stats.last_error:
                assert time.monotonic() < deadline, second.stats.last_error
                await asyncio.sleep(0.02)
            assert not second.stats.connected and "dup-d" in second.stats.last_error
            await first.done_writing()  # the first stops: its stream ends, the node is free
            deadline = time.monotonic() + 10
            while not second.stats.connected:
                assert time.monotonic() < deadline, second.stats.last_error
                await asyncio.sleep(0.02)
        finally:
            second.stop()
            await task


async def test_the_local_key_speaks_for_this_host_and_its_demos(server: FloeServer) -> None:
    """`floe demo` runs beside this host's dataplane under an id of its own, with the local
    key the control plane minted (bound to `<host>*`); other hosts' ids stay refused."""
    local = (server.data_dir / "dataplane.key").read_text().strip()
    host = socket.gethostname()
    demo = demo_node_id({})
    assert demo.startswith(f"{host}-demo-") and demo != demo_node_id({})
    async with grpc.aio.insecure_channel(target(server)) as channel:
        plain = await open_stream(channel, local, hello(host))
        beside = await open_stream(channel, local, hello(demo))
        assert node_view(server, host)["connected"] and node_view(server, demo)["connected"]
        error = await refused(channel, local, hello(f"not-{host}"))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        for call in (plain, beside):
            await call.done_writing()
