"""End to end on live traffic: pass-through keeps a host's TCP connection and ping working
while their flows are counted exactly, and dropped frames show up as flows with their rule
(in /flows and in the observer) in every XDP mode.

Pass-through topology: namespaces A and B joined through a bridge in the test's namespace,
the dataplane on A's bridge port. Nothing in the test's namespace has an address, so parallel
runs cannot collide. XDP sees A's frames; B counts, at a packet socket, what reached it.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from dataplane.netns import Topology, VethPair, unique_prefix
from dataplane.trafficgen import AfPacketSender, FrameSpec, build_frame
from floe.observer.v1 import observer_pb2 as opb
from floe.observer.v1 import observer_pb2_grpc as opb_grpc
from tests.e2e.conftest import ControlPlane
from tests.e2e.test_dataplane_e2e import (
    REPO,
    _dataplane,
    _stop,
    _wait_attached,
    _wait_generation,
)
from tests.support.hostcount import HostCounter

pytestmark = pytest.mark.root

A_IP, B_IP = "10.77.0.1", "10.77.0.2"
PORT = 5001
PAYLOAD = 300_000


@dataclass(slots=True)
class Bridged:
    topology: Topology
    a: VethPair  # a.host is the bridge port the dataplane watches
    b: VethPair
    bridge: str


@pytest.fixture
def bridged() -> Iterator[Bridged]:
    with Topology(unique_prefix("pt")) as topo:
        ns_a, ns_b = topo.add_namespace("a"), topo.add_namespace("b")
        a = topo.add_veth("ha", "pa", namespace=ns_a)
        b = topo.add_veth("hb", "pb", namespace=ns_b)
        bridge = f"{topo.prefix}br"
        topo.run(None, ["ip", "link", "add", bridge, "type", "bridge"])
        try:
            topo.run(None, ["sysctl", "-q", "-w", f"net.ipv6.conf.{bridge}.disable_ipv6=1"])
            for port in (a.host, b.host):
                topo.run(None, ["ip", "link", "set", port, "master", bridge])
            topo.run(None, ["ip", "link", "set", bridge, "up"])
            topo.add_address(ns_a, a.peer, f"{A_IP}/24")
            topo.add_address(ns_b, b.peer, f"{B_IP}/24")
            yield Bridged(topo, a, b, bridge)
        finally:
            topo.run(None, ["ip", "link", "del", bridge], check=False)


def _echo_server(ns: str) -> tuple[socket.socket, threading.Thread]:
    def make() -> socket.socket:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.bind((B_IP, PORT))
        server.listen(1)
        server.settimeout(20)
        return server

    server = Topology.call_in(ns, make)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(20)
            while data := conn.recv(65536):
                conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


def _tcp_exchange(ns: str) -> int:
    """Send PAYLOAD bytes from A, read them back; returns the client's port."""
    def make() -> socket.socket:
        return socket.create_connection((B_IP, PORT), timeout=20)

    client = Topology.call_in(ns, make)
    with client:
        port = int(client.getsockname()[1])
        data = bytes(range(256)) * (PAYLOAD // 256)
        client.sendall(data)
        client.shutdown(socket.SHUT_WR)
        echoed = bytearray()
        while chunk := client.recv(65536):
            echoed += chunk
    assert echoed == data  # the connection works through XDP pass-through
    return port


def _checksum(data: bytes) -> int:
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data) - 1, 2))
    total += data[-1] << 8 if len(data) % 2 else 0
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ping(ns: str, count: int) -> int:
    """ICMP echo from A to B over a raw socket (no ping binary needed); replies received."""
    sock = Topology.call_in(ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW,
                                                      socket.IPPROTO_ICMP))
    ident = threading.get_ident() & 0xFFFF
    replies = 0
    with sock:
        sock.settimeout(2)
        for seq in range(count):
            body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"floe-ping" * 4
            body = body[:2] + struct.pack("!H", _checksum(body)) + body[4:]
            sock.sendto(body, (B_IP, 0))
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                try:
                    packet = sock.recv(2048)
                except TimeoutError:
                    break
                icmp = packet[(packet[0] & 0x0F) * 4:]
                if icmp[0] == 0 and struct.unpack("!HH", icmp[4:8]) == (ident, seq):
                    replies += 1
                    break
            time.sleep(0.1)
    return replies


def _from_a(proto: int) -> Any:
    """Keep IPv4 frames from A of protocol `proto`."""
    source = socket.inet_aton(A_IP)
    return lambda f: f[12:14] == b"\x08\x00" and f[23] == proto and f[26:30] == source


def _flow(plane: ControlPlane, name: str, want: dict[str, Any], packets: int,
          timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = [f for f in plane.flows(name) if all(f[k] == v for k, v in want.items())]
        if found and sum(f["packets"] for f in found) >= packets:
            break
        time.sleep(0.2)
    assert len(found) == 1, (want, found)
    return found[0]


def test_passthrough_keeps_tcp_and_ping_working_and_counts_them_exactly(
        control_plane: ControlPlane, bridged: Bridged) -> None:
    watched = bridged.a.host
    ns_a, ns_b = bridged.a.namespace, bridged.b.namespace
    assert ns_a is not None and ns_b is not None
    process = _dataplane(control_plane.server, "--mode", "passthrough", "--interface", watched)
    try:
        _wait_attached(control_plane, watched)
        with HostCounter(bridged.b.peer, ns_b, keep=_from_a(6)) as tcp_at_b, \
                HostCounter(bridged.b.peer, ns_b, keep=_from_a(1)) as icmp_at_b:
            server, thread = _echo_server(ns_b)
            with server:
                port = _tcp_exchange(ns_a)
                thread.join(20)
            assert _ping(ns_a, 5) == 5  # every echo answered
            time.sleep(0.5)  # the last FIN/ACK
            tcp_frames, icmp_frames = tcp_at_b.poll(), icmp_at_b.poll()
        assert tcp_frames > PAYLOAD // 1500 and icmp_frames == 5

        tcp = _flow(control_plane, watched, {"src": A_IP, "dst": B_IP, "src_port": port,
                                             "dst_port": PORT}, tcp_frames)
        assert tcp["packets_ab"] == tcp_frames  # exactly what B's stack received from A
        assert tcp["verdict"] == "forwarded" and tcp["rule_id"] == 0
        assert tcp["sample_weight"] == 1
        icmp = _flow(control_plane, watched, {"src": A_IP, "dst": B_IP, "proto": 1}, 5)
        assert icmp["packets_ab"] == 5 and icmp["verdict"] == "forwarded"

        entry = control_plane.interface(watched)
        assert entry is not None and entry["mode"] == "passthrough"
        assert entry["packets"] == entry["passed"] and entry["dropped"] == 0
        assert entry["loss"].get("ring_buffer:ring_full", 0) == 0
        nodes = control_plane.client.get("/api/v2/nodes").json()["data"]
        interfaces = [i for n in nodes for i in n["interfaces"] if i["name"] == watched]
        assert interfaces == [{"name": watched, "mode": "passthrough",
                               "attach_mode": interfaces[0]["attach_mode"], "xsk_mode": "none"}]
    finally:
        _stop(process)
        subprocess.run([sys.executable, "-m", "app.cli", "dataplane", "--detach",
                        "--interface", watched], env=dict(control_plane.server.env),
                       cwd=REPO, capture_output=True, check=False)


@pytest.fixture
def veth() -> Iterator[VethPair]:
    with Topology(unique_prefix("drop")) as topology:
        namespace = topology.add_namespace()
        yield topology.add_veth(namespace=namespace)


def _observer_flows(plane: ControlPlane, verdict: int) -> list[Any]:
    token = plane.client.headers["Authorization"]
    target = f"127.0.0.1:{plane.server.grpc_port}"
    request = opb.GetFlowsRequest(allow=[opb.FlowFilter(verdict=[verdict])])  # type: ignore[list-item]
    with grpc.insecure_channel(target) as channel:
        stream = opb_grpc.ObserverStub(channel).GetFlows(
            request, metadata=[("authorization", token)], timeout=10)
        return [e.flow.flow for response in stream for e in response.events
                if e.WhichOneof("event") == "flow"]


@pytest.mark.parametrize("mode", ["tap", "inline", "passthrough"])
def test_dropped_flows_appear_with_their_rule(
        control_plane: ControlPlane, veth: VethPair, mode: str) -> None:
    denied = FrameSpec(src="10.9.0.1", dst="10.9.0.2", proto="tcp", sport=1000, dport=80)
    allowed = FrameSpec(src="2001:db8::1", dst="2001:db8::2", proto="udp", sport=53, dport=5353)
    process = _dataplane(control_plane.server, "--mode", mode, "--interface", veth.host)
    try:
        _wait_attached(control_plane, veth.host)
        response = control_plane.client.put("/api/v2/rules", json={"rules": [
            {"id": 7, "action": "deny", "src": "10.9.0.0/24"}]})
        assert response.status_code == 200, response.text
        _wait_generation(control_plane, response.json()["data"]["generation"])
        with AfPacketSender(veth.peer, veth.namespace) as sender:
            frames = [build_frame(denied)] * 40 + [build_frame(allowed)] * 20
            assert sender.send(frames) == len(frames)

        dropped = _flow(control_plane, veth.host, {"src": "10.9.0.1", "verdict": "dropped"}, 40)
        assert (dropped["rule_id"], dropped["packets"], dropped["sample_weight"]) == (7, 40, 1)
        assert dropped["bytes"] == 40 * len(build_frame(denied))
        passed = _flow(control_plane, veth.host, {"src": "2001:db8::1"}, 20)
        assert passed["packets"] == 20 and passed["rule_id"] == 0
        assert passed["verdict"] == ("unknown" if mode == "tap" else "forwarded")
        only = control_plane.client.get("/api/v2/flows", params={"verdict": "dropped"}).json()
        assert [(f["src"], f["rule_id"]) for f in only["data"]
                if f["interface"] == veth.host] == [("10.9.0.1", 7)]

        observed = [f for f in _observer_flows(control_plane, opb.VERDICT_DROPPED)
                    if f.interface == veth.host]
        assert observed and {(f.source_ip, f.rule_id, f.verdict) for f in observed} == {
            ("10.9.0.1", 7, opb.VERDICT_DROPPED)}
        assert max(f.packets for f in observed) == 40
    finally:
        _stop(process)
        subprocess.run([sys.executable, "-m", "app.cli", "dataplane", "--detach",
                        "--interface", veth.host], env=dict(control_plane.server.env),
                       cwd=REPO, capture_output=True, check=False)
