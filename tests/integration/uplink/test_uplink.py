"""Uplink client ↔ ingest service over a real gRPC socket: sequencing, resend, loss, auth."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
import uuid
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.factory import create_app
from app.identity import get_identity
from app.ingest import get_ingest, get_state
from dataplane import uplink as dataplane_uplink
from dataplane.uplink import UplinkClient, backoff_delay
from floe.dataplane.v1 import uplink_pb2 as pb
from floe.dataplane.v1 import uplink_pb2_grpc
from tests.integration.uplink.conftest import ControlPlane, start_grpc
from tests.support.ports import free_port

# grpc.aio keeps process-wide state bound to one event loop: share one loop per module.
pytestmark = pytest.mark.asyncio(loop_scope="module")


async def get_json(cp: ControlPlane, url: str, role: str = "reader") -> Any:
    response = await cp.app.test_client().get(url, headers=cp.bearer(role))
    assert response.status_code == 200, await response.get_data()
    return (await response.get_json())["data"]


def hello(node: str = "node-a", instance: str | None = None) -> Any:
    return pb.Hello(
        node_id=node,
        instance_id=instance or uuid.uuid4().hex,
        interfaces=[
            pb.InterfaceInfo(name="veth0", mode=pb.MODE_TAP, attach_mode=pb.ATTACH_MODE_NATIVE)
        ],
        capabilities=["rules"],
    )


def snapshot(packets: int, epoch: str = "epoch-1", iface: str = "veth0") -> Any:
    return pb.CounterSnapshot(
        interface=iface,
        counter_epoch=epoch,
        values={"packets": packets, "bytes": packets * 100, "dropped_rule": packets // 10},
        taken_unix_ns=time.time_ns(),
    )


def flow(n: int, packets: int = 1) -> Any:
    src = ipaddress.IPv6Address("::ffff:10.0.0.1").packed
    dst = ipaddress.IPv6Address("::ffff:10.0.0.2").packed
    return pb.FlowRecord(
        addr_a=src,
        addr_b=dst,
        port_a=40000 + n,
        port_b=80,
        proto=6,
        interface="veth0",
        packets_ab=packets,
        bytes_ab=packets * 60,
        first_seen_unix_ns=1_000 + n,
    )


def client(cp_target: str, key: str, **kwargs: Any) -> UplinkClient:
    instance = uuid.uuid4().hex
    kwargs.setdefault("backoff_initial", 0.05)
    kwargs.setdefault("backoff_max", 0.2)
    return UplinkClient(cp_target, lambda: key, lambda: hello(instance=instance), **kwargs)


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_batches_are_applied_acked_and_served(control_plane: ControlPlane) -> None:
    uplink = client(control_plane.target, control_plane.keys["writer"])
    task = asyncio.create_task(uplink.run())
    try:
        for i in range(1, 4):
            uplink.submit(counters=[snapshot(100 * i)], flows=[flow(i, packets=i)])
        assert await uplink.flush(5.0)
        assert uplink.buffered == 0
        assert uplink.stats.acked_seq == 3
    finally:
        uplink.stop()
        await task
    await wait_for(lambda: not control_plane.state.nodes["node-a"].connected)

    summary = await get_json(control_plane, "/api/v2/stats/summary")
    (iface,) = summary["interfaces"]
    assert (iface["node_id"], iface["interface"], iface["mode"]) == ("node-a", "veth0", "tap")
    assert (iface["packets"], iface["bytes"], iface["dropped"]) == (300, 30000, 30)
    flows = await get_json(control_plane, "/api/v2/flows?limit=2")
    assert [f["src_port"] for f in flows] == [40003, 40002]
    assert flows[0]["src"] == "10.0.0.1" and flows[0]["packets"] == 3
    nodes = await get_json(control_plane, "/api/v2/nodes")
    assert nodes[0]["node_id"] == "node-a" and nodes[0]["last_applied_seq"] == 3
    assert nodes[0]["connected"] is False  # the client stopped


async def test_duplicate_seq_is_applied_once(control_plane: ControlPlane) -> None:
    instance = uuid.uuid4().hex
    async with grpc.aio.insecure_channel(control_plane.target) as channel:
        call = uplink_pb2_grpc.UplinkStub(channel).Connect(
            metadata=(("authorization", f"Bearer {control_plane.keys['writer']}"),)
        )
        await call.write(pb.UplinkMessage(hello=hello(instance=instance)))
        assert (await call.read()).welcome.last_applied_seq == 0
        first = pb.Batch(seq=1, flows=[flow(1, packets=5)], counters=[snapshot(10)])
        again = pb.Batch(seq=1, flows=[flow(2, packets=7)], counters=[snapshot(10)])
        await call.write(pb.UplinkMessage(batch=first))
        await call.write(pb.UplinkMessage(batch=again))
        assert (await call.read()).ack.seq == 1
        assert (await call.read()).ack.seq == 1
        await call.done_writing()
    state = control_plane.state
    assert state.batches_applied == 1 and state.batches_duplicate == 1
    assert [f["packets"] for f in state.recent_flows(10)] == [5]

    # Same instance reconnecting learns what was applied.
    async with grpc.aio.insecure_channel(control_plane.target) as channel:
        call = uplink_pb2_grpc.UplinkStub(channel).Connect(
            metadata=(("authorization", f"Bearer {control_plane.keys['writer']}"),)
        )
        await call.write(pb.UplinkMessage(hello=hello(instance=instance)))
        assert (await call.read()).welcome.last_applied_seq == 1
        await call.done_writing()


async def test_snapshots_never_double_count(control_plane: ControlPlane) -> None:
    """A restarted dataplane re-sends the same kernel epoch: totals follow the kernel."""
    for packets in (100, 250):
        uplink = client(control_plane.target, control_plane.keys["writer"])
        task = asyncio.create_task(uplink.run())
        uplink.submit(counters=[snapshot(packets)])
        assert await uplink.flush(5.0)
        uplink.stop()
        await task
    # A new epoch (program reloaded) adds to the old one.
    uplink = client(control_plane.target, control_plane.keys["writer"])
    task = asyncio.create_task(uplink.run())
    uplink.submit(counters=[snapshot(40, epoch="epoch-2")])
    assert await uplink.flush(5.0)
    uplink.stop()
    await task
    (iface,) = control_plane.state.summary()["interfaces"]
    assert iface["packets"] == 290


async def test_resend_after_reconnect_and_overflow_is_reported(control_plane: ControlPlane) -> None:
    uplink = client(control_plane.target, control_plane.keys["writer"], max_buffered=3)
    task = asyncio.create_task(uplink.run())
    try:
        uplink.submit(counters=[snapshot(10)], flows=[flow(0)])
        assert await uplink.flush(5.0)
        port = int(control_plane.target.rsplit(":", 1)[1])
        await control_plane.server.stop(0)
        await wait_for(lambda: not uplink.stats.connected)
        for i in range(1, 11):  # 10 batches into a buffer of 3: 7 dropped
            uplink.submit(counters=[snapshot(10 + i)], flows=[flow(i)])
        assert uplink.stats.dropped_batches == 7 and uplink.stats.dropped_records == 7
        control_plane.server, _ = await start_grpc(control_plane.app, port)
        assert await uplink.flush(10.0)
    finally:
        uplink.stop()
        await task
    summary = control_plane.state.summary()
    assert summary["totals"]["packets"] == 20
    assert summary["loss"] == {"uplink_buffer:batches": 7, "uplink_buffer:flow_records": 7}
    ports = sorted(f["src_port"] - 40000 for f in control_plane.state.recent_flows(100))
    assert ports == [0, 8, 9, 10]


async def test_control_plane_restart_rebuilds_totals(
    control_plane: ControlPlane, make_settings: Any
) -> None:
    """A fresh control plane (state lost) converges on the kernel's totals from snapshots."""
    uplink = client(control_plane.target, control_plane.keys["writer"])
    task = asyncio.create_task(uplink.run())
    try:
        uplink.submit(counters=[snapshot(500)])
        assert await uplink.flush(5.0)
        port = int(control_plane.target.rsplit(":", 1)[1])
        await control_plane.server.stop(0)
        # Same data dir and database: the key survives, the in-memory aggregate does not.
        fresh = create_app(make_settings())
        async with fresh.test_app():
            server, _ = await start_grpc(fresh, port)
            try:
                uplink.submit(counters=[snapshot(800)])
                assert await uplink.flush(10.0)
                summary = get_state(fresh).summary()
                assert summary["totals"]["packets"] == 800
                assert summary["nodes"]["connected"] == 1
            finally:
                await server.stop(0)
    finally:
        uplink.stop()
        await task


@pytest.mark.parametrize(
    ("role", "code"),
    [
        ("", grpc.StatusCode.UNAUTHENTICATED),
        ("bogus", grpc.StatusCode.UNAUTHENTICATED),
        ("reader", grpc.StatusCode.PERMISSION_DENIED),
        ("other", grpc.StatusCode.PERMISSION_DENIED),
    ],
)
async def test_auth_failures(control_plane: ControlPlane, role: str, code: grpc.StatusCode,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    key = control_plane.keys.get(role, "floe_bogus_0123456789abcdef" if role else "")
    metadata = (("authorization", f"Bearer {key}"),) if key else ()
    async with grpc.aio.insecure_channel(control_plane.target) as channel:
        call = uplink_pb2_grpc.UplinkStub(channel).Connect(metadata=metadata)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.write(pb.UplinkMessage(hello=hello()))
            await call.read()
        assert caught.value.code() == code
    assert control_plane.state.nodes == {}

    attempts: list[int] = []  # a refused key backs off like any failure, never a busy loop

    def record(attempt: int, initial: float, maximum: float) -> float:
        attempts.append(attempt)
        return 0.01

    monkeypatch.setattr(dataplane_uplink, "backoff_delay", record)
    uplink = client(control_plane.target, key=key)
    task = asyncio.create_task(uplink.run())
    await wait_for(lambda: uplink.stats.auth_failures >= 3)
    uplink.stop()
    await task
    assert uplink.stats.connects == 0
    assert attempts[:3] == [1, 2, 3]


@pytest.mark.parametrize("node", ["", "a\x00b", "tab\there", "n" * 129])
async def test_hello_with_a_bad_node_id_is_refused(control_plane: ControlPlane, node: str) -> None:
    """A node id names the node in grants (node/<id>, 128 characters) and hub topics: empty,
    control characters or too long is INVALID_ARGUMENT, and no node is created."""
    metadata = (("authorization", f"Bearer {control_plane.keys['writer']}"),)
    async with grpc.aio.insecure_channel(control_plane.target) as channel:
        call = uplink_pb2_grpc.UplinkStub(channel).Connect(metadata=metadata)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.write(pb.UplinkMessage(hello=hello(node=node)))
            await call.read()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "node_id" in (caught.value.details() or "")
    assert control_plane.state.nodes == {}


async def test_rules_are_pushed_and_acknowledged(control_plane: ControlPlane) -> None:
    received: list[Any] = []

    async def on_rules(rules: Any) -> None:
        if any(rule.id == 13 for rule in rules.rules):
            raise ValueError("rule 13 is unlucky")
        received.append(rules)

    uplink = client(control_plane.target, control_plane.keys["writer"], on_rules=on_rules)
    task = asyncio.create_task(uplink.run())
    try:
        await wait_for(lambda: uplink.stats.connected)
        service = get_ingest(control_plane.app)
        deny = pb.Rule(id=7, action=pb.ACTION_DENY, cidr=pb.CidrMatch(cidr="10.9.0.0/16"))
        service.set_rules(pb.RuleSet(generation=1, rules=[deny]))
        node = control_plane.state.node("node-a")
        await wait_for(lambda: node.rules_generation == 1)
        assert received[0].rules[0].cidr.cidr == "10.9.0.0/16"
        service.set_rules(pb.RuleSet(generation=2, rules=[pb.Rule(id=13, protocol=17)]))
        await wait_for(lambda: node.rules_error == "rule 13 is unlucky")
        assert node.rules_generation == 1
    finally:
        uplink.stop()
        await task


async def test_rest_views_validate_and_authorise(control_plane: ControlPlane) -> None:
    http = control_plane.app.test_client()
    reader = control_plane.bearer("reader")
    assert (await http.get("/api/v2/stats/summary")).status_code == 401
    assert (
        await http.get("/api/v2/flows", headers=control_plane.bearer("writer"))
    ).status_code == 403
    for bad in ("0", "1001", "x"):
        response = await http.get(f"/api/v2/flows?limit={bad}", headers=reader)
        assert response.status_code == 422, bad
    assert (await http.get("/api/v2/flows?ip=nope", headers=reader)).status_code == 422
    assert (await http.get("/api/v1/nodes", headers=reader)).headers["Deprecation"] == "true"
    ready = await (await http.get("/readyz")).get_json()
    assert ready["checks"]["dataplane"]["ok"] is True


async def test_backoff_is_bounded_and_jittered() -> None:
    delays = [backoff_delay(attempt, 0.1, 2.0) for attempt in range(12)]
    assert all(0.05 <= d <= 2.0 for d in delays)
    assert delays[-1] >= 1.0  # capped at the maximum, never below half of it
    assert len({round(backoff_delay(5, 0.1, 2.0), 6) for _ in range(20)}) > 1


async def scrape(control_plane: ControlPlane,
                 role: str | None = "reader") -> dict[tuple[str, tuple[Any, ...]], float]:
    """/metrics on the app as `role` sees it (None: anonymous)."""
    headers = control_plane.bearer(role) if role else {}
    response = await control_plane.app.test_client().get("/metrics", headers=headers)
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families((await response.get_data()).decode())
        for s in family.samples
    }


async def test_prometheus_metrics_show_what_dataplanes_report(
        control_plane: ControlPlane) -> None:
    before = await scrape(control_plane)
    # Hits are kept for rule ids the control plane pushed only.
    get_ingest(control_plane.app).set_rules(pb.RuleSet(generation=1,
                                                       rules=[pb.Rule(id=42, protocol=17)]))
    instance = uuid.uuid4().hex
    uplink = UplinkClient(control_plane.target, lambda: control_plane.keys["writer"],
                          lambda: hello(node="node-metrics", instance=instance),
                          backoff_initial=0.05, backoff_max=0.2)
    task = asyncio.create_task(uplink.run())
    counters = pb.CounterSnapshot(interface="eth9", counter_epoch="epoch-1",
                                  taken_unix_ns=time.time_ns(),
                                  values={"packets": 500, "bytes": 50000, "passed": 440,
                                          "dropped_rule": 50, "dropped_malformed": 10,
                                          "malformed": 10})
    try:
        uplink.submit(
            counters=[counters],
            losses=[pb.LossReport(source=pb.LOSS_SOURCE_AFXDP_RING, interface="eth9", count=7,
                                  detail="rx_ring_full"),
                    pb.LossReport(source=pb.LOSS_SOURCE_FILL_RING, count=3, detail="node")],
            rule_hits=[pb.RuleHits(rule_id=42, packets=30, bytes=1800, interface="eth9",
                                   counter_epoch="epoch-1")],
        )
        assert await uplink.flush(5.0)
        during = await scrape(control_plane)
    finally:
        uplink.stop()
        await task
    # the server learns of the close asynchronously (the stream's reader task sees EOF)
    await wait_for(lambda: not control_plane.state.nodes["node-metrics"].connected)
    after = await scrape(control_plane)

    def at(name: str, **labels: str) -> float:
        return after[(name, tuple(sorted({"node": "node-metrics", **labels}.items())))]

    assert at("floe_interface_packets_total", interface="eth9") == 500
    assert at("floe_interface_bytes_total", interface="eth9") == 50000
    verdicts = {v: at("floe_interface_verdicts_total", interface="eth9", verdict=v)
                for v in ("passed", "redirected", "dropped_rule", "dropped_default",
                          "dropped_malformed")}
    assert verdicts == {"passed": 440, "redirected": 0, "dropped_rule": 50,
                        "dropped_default": 0, "dropped_malformed": 10}
    assert at("floe_interface_malformed_total", interface="eth9") == 10
    assert at("floe_interface_loss_total", interface="eth9",
              source="afxdp_ring:rx_ring_full") == 7
    assert at("floe_node_loss_total", source="fill_ring:node") == 3
    assert at("floe_rule_hit_packets_total", interface="eth9", rule="42") == 30
    assert at("floe_rule_hit_bytes_total", interface="eth9", rule="42") == 1800

    def delta(name: str, state: str, now: dict[tuple[str, tuple[Any, ...]], float]) -> float:
        key = (name, (("state" if name.endswith("nodes") else "result", state),))
        return now[key] - before.get(key, 0)

    assert delta("floe_dataplane_nodes", "known", after) == 1
    assert delta("floe_dataplane_nodes", "connected", during) == 1
    assert delta("floe_dataplane_nodes", "connected", after) == 0  # the client stopped
    assert delta("floe_uplink_batches_total", "applied", after) == 1

    # Every node's traffic is not for anonymous eyes, nor for a credential without
    # stats:read: on the app's port they see the serving metrics only.
    dataplane_series = ("floe_interface_", "floe_node_", "floe_rule_hit", "floe_dataplane_",
                        "floe_flows_", "floe_uplink_")
    assert any(name.startswith(dataplane_series) for name, _ in after)
    for role in (None, "writer"):
        seen = await scrape(control_plane, role)
        assert not any(name.startswith(dataplane_series) for name, _ in seen), role
        assert any(name == "floe_http_inflight_requests" for name, _ in seen), role
    made_up = "floe_abcdefghijkl_" + "x" * 43  # well-formed: looked up, not found
    bad = await control_plane.app.test_client().get(
        "/metrics", headers={"Authorization": f"Bearer {made_up}"})
    assert bad.status_code == 401
    # The database gone and the key not cached: the scrape still answers, with the serving
    # metrics only, rather than a 503 exactly when they matter.
    identity = get_identity(control_plane.app)
    identity.cache.keys.clear()
    await identity.db.close()
    try:
        seen = await scrape(control_plane, "reader")
    finally:
        await identity.db.start()
    assert not any(name.startswith(dataplane_series) for name, _ in seen)
    assert any(name == "floe_http_inflight_requests" for name, _ in seen)


async def test_failures_warn_once_persistent_and_a_welcome_starts_afresh(
        control_plane: ControlPlane, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dataplane.uplink")
    port = free_port()
    uplink = client(f"127.0.0.1:{port}", control_plane.keys["writer"])  # nobody there yet
    task = asyncio.create_task(uplink.run())
    server = None
    try:
        await wait_for(lambda: uplink.stats.failures >= 4)
        warned = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warned) == 1 and "keeps failing" in warned[0].getMessage()
        server, _ = await start_grpc(control_plane.app, port)
        await wait_for(lambda: uplink.stats.connected)
        assert uplink._failing == -1 and uplink._warned == ""  # what the Welcome reset
        caplog.clear()
        await server.stop(0)
        server = None
        await wait_for(lambda: not uplink.stats.connected and uplink.stats.failures >= 6)
        first = [r for r in caplog.records if "uplink to" in r.getMessage()]
        assert first and first[0].levelno == logging.INFO  # a lost stream is one failure
    finally:
        if server is not None:
            await server.stop(0)
        uplink.stop()
        await task
