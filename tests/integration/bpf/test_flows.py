"""Inline mode: the in-kernel LRU flow map, read back in one batch, matches what was sent."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable

import pytest

from dataplane.bpf import FLOW_DTYPE, XdpProgram
from dataplane.trafficgen import AfPacketSender, FrameSpec, build_frame
from tests.support.topology import VethNs, wait_until

pytestmark = pytest.mark.root


def _addr(raw: object) -> str:
    ip = ipaddress.IPv6Address(bytes(raw))  # type: ignore[call-overload]
    return str(ip.ipv4_mapped or ip)


def test_flows_match_sent_tuples(veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    # (forward spec, forward count, reverse count)
    plan = [
        (FrameSpec(src="10.4.0.2", dst="10.4.0.1", proto="tcp", sport=40000, dport=443,
                   tcp_flags=0x02), 3, 2),
        (FrameSpec(src="10.4.0.1", dst="10.4.0.3", proto="udp", sport=5353, dport=53), 4, 0),
        (FrameSpec(src="fd00:4::9", dst="fd00:4::1", proto="udp", sport=7, dport=9,
                   vlans=(42,)), 5, 1),
        (FrameSpec(src="10.4.0.5", dst="10.4.0.6", proto="icmp"), 2, 0),
    ]
    frames: list[bytes] = []
    for spec, fwd, rev in plan:
        frames += [build_frame(spec)] * fwd
        reply = FrameSpec(src=spec.dst, dst=spec.src, proto=spec.proto, sport=spec.dport,
                          dport=spec.sport, vlans=spec.vlans, tcp_flags=0x12)
        frames += [build_frame(reply)] * rev
    with AfPacketSender(veth_ns.pair.peer, veth_ns.namespace) as sender:
        assert sender.send(frames) == len(frames)
    assert wait_until(lambda: prog.counters().packets == len(frames))

    flows = prog.read_flows()
    assert flows.dtype == FLOW_DTYPE
    assert len(flows) == len(plan)
    by_tuple = {(_addr(f["src_addr"]), _addr(f["dst_addr"]), int(f["src_port"]),
                 int(f["dst_port"]), int(f["proto"])): f for f in flows}
    protos = {"tcp": 6, "udp": 17, "icmp": 1}
    for spec, fwd, rev in plan:
        ports = (spec.sport, spec.dport) if spec.proto in ("tcp", "udp") else (0, 0)
        flow = by_tuple[(spec.src, spec.dst, *ports, protos[str(spec.proto)])]
        size = len(build_frame(spec))
        assert int(flow["packets_fwd"]) == fwd and int(flow["bytes_fwd"]) == fwd * size
        assert int(flow["packets_rev"]) == rev
        assert int(flow["vlan"]) == (spec.vlans[0] if spec.vlans else 0)
        assert int(flow["ifindex"]) == prog.ifindex
        assert int(flow["ip_version"]) == (6 if ":" in spec.src else 4)
        assert time.time_ns() - 10**10 < int(flow["first_seen_ns"]) <= int(flow["last_seen_ns"])
        assert int(flow["last_seen_ns"]) <= time.time_ns() + 10**8
    tcp = by_tuple[("10.4.0.2", "10.4.0.1", 40000, 443, 6)]
    assert int(tcp["tcp_flags"]) == 0x12  # SYN | ACK from both directions
    # a flow's first-seen time is part of its identity upstream: the same on every read
    for _ in range(3):
        time.sleep(0.01)
        again = prog.read_flows()
        assert sorted(again["first_seen_ns"].tolist()) == sorted(flows["first_seen_ns"].tolist())

    assert prog.clear_flows() == len(plan)
    assert prog.read_flows().size == 0
    prog.set_config(track_flows=False)
    with AfPacketSender(veth_ns.pair.peer, veth_ns.namespace) as sender:
        sender.send(frames[:3])
    assert wait_until(lambda: prog.counters().packets == len(frames) + 3)
    assert prog.read_flows().size == 0
