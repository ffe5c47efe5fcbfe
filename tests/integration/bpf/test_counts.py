"""N known frames of each class in -> the per-interface counters show exactly N per class."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from dataplane.bpf import XdpProgram
from dataplane.trafficgen import (
    MALFORMED_REASONS,
    AfPacketSender,
    FrameSpec,
    build_frame,
    malformed_frame,
)
from tests.support.topology import VethNs, wait_until

pytestmark = pytest.mark.root



def v4(proto: str, **kw: Any) -> FrameSpec:
    return FrameSpec(src="10.1.0.1", dst="10.1.0.2", proto=proto, **kw)


def v6(proto: str, **kw: Any) -> FrameSpec:
    return FrameSpec(src="fd00:1::1", dst="fd00:1::2", proto=proto, **kw)


def _send(veth_ns: VethNs, frames: list[bytes]) -> None:
    with AfPacketSender(veth_ns.pair.peer, veth_ns.namespace) as sender:
        assert sender.send(frames) == len(frames)


def test_classes_counted_exactly(veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    assert prog.attach_mode == "native"
    plan = {  # counter -> (frames, how many)
        "v4_tcp": (v4("tcp"), 7),
        "v4_udp": (v4("udp"), 11),
        "v4_icmp": (v4("icmp"), 5),
        "v6_tcp": (v6("tcp"), 13),
        "v6_udp": (v6("udp"), 3),
        "v6_icmpv6": (v6("icmpv6"), 4),
        "v4_udp_vlan": (v4("udp", vlans=(100,)), 6),
        "v6_tcp_qinq": (v6("tcp", vlans=(200, 300)), 2),
    }
    frames: list[bytes] = []
    total_bytes = 0
    for spec, count in plan.values():
        frame = build_frame(spec)
        frames += [frame] * count
        total_bytes += len(frame) * count
    malformed = [malformed_frame(reason) for reason in MALFORMED_REASONS for _ in range(3)]
    frames += malformed
    other = bytes(12) + b"\x08\x06" + bytes(28)  # ARP: neither IPv4 nor IPv6
    frames += [other] * 2

    _send(veth_ns, frames)
    assert wait_until(lambda: prog.counters().packets >= len(frames))
    c = prog.counters()

    assert c.packets == len(frames)
    assert c.bytes == total_bytes + sum(map(len, malformed)) + 2 * len(other)
    assert c.ipv4_packets == 7 + 11 + 5 + 6
    assert c.ipv6_packets == 13 + 3 + 4 + 2
    assert c.l3_other_packets == 2
    assert c.tcp_packets == 7 + 13 + 2
    assert c.udp_packets == 11 + 3 + 6
    assert c.icmp_packets == 5
    assert c.icmpv6_packets == 4
    assert c.l4_other_packets == 0
    assert c.vlan_packets == 6 + 2
    assert c.malformed == 3 * len(MALFORMED_REASONS)
    for reason in MALFORMED_REASONS:
        assert c.malformed_by_reason[reason] == 3, reason
    assert c.malformed_by_reason["l2_truncated"] == 0
    v4_udp = build_frame(plan["v4_udp"][0])
    assert c.udp_bytes == 11 * len(v4_udp) + 3 * len(build_frame(plan["v6_udp"][0])) + 6 * len(
        build_frame(plan["v4_udp_vlan"][0]))
    # every frame got exactly one verdict; inline mode with no rules passes everything
    assert c.passed == c.packets and c.dropped == 0 and c.redirected == 0


def test_fragments_and_malformed_drop(veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    prog.set_config(malformed_action="deny")
    first = bytearray(build_frame(v4("udp")))
    first[14 + 6] = 0x20  # MF set, offset 0: first fragment, L4 header present
    later = bytearray(build_frame(v4("udp")))
    later[14 + 6:14 + 8] = (0x0010).to_bytes(2, "big")  # offset 16*8, no L4 header
    frames = [bytes(first)] * 4 + [bytes(later)] * 5 + [malformed_frame("ipv4_bad_ihl")] * 3
    _send(veth_ns, frames)
    assert wait_until(lambda: prog.counters().packets >= len(frames))
    c = prog.counters()
    assert c.fragments == 9
    assert c.udp_packets == 4
    assert c.l4_other_packets == 5
    assert c.dropped_malformed == 3
    assert c.passed == 9


def test_paced_sending(veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    frame = build_frame(v4("udp"))
    with AfPacketSender(veth_ns.pair.peer, veth_ns.namespace, batch=16) as sender:
        start = time.monotonic()
        assert sender.send([frame] * 400, pps=4000) == 400
        elapsed = time.monotonic() - start
    assert 0.08 <= elapsed < 2.0  # 400 frames at 4000/s: ~0.1 s, not a burst
    assert wait_until(lambda: prog.counters().udp_packets == 400)


def test_ipv6_extension_headers_and_fragments(veth_ns: VethNs,
                                              make_xdp: Callable[..., XdpProgram]) -> None:
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    plan = [  # (spec, count, l4 counter that must see it)
        (v6("tcp", ipv6_ext=(0, 60)), 3, "tcp_packets"),  # hop-by-hop + dest opts, then TCP
        (v6("udp", ipv6_ext=(0, 43, 51, 60)), 2, "udp_packets"),  # 4 headers incl. AH
        (v6("udp", ipv6_ext=(60,) * 6), 1, "udp_packets"),  # exactly FLOE_MAX_EXT_HDRS
        (v6("tcp", more_fragments=True), 4, "tcp_packets"),  # first fragment: ports present
        (v6("tcp", frag_offset=10), 5, "l4_other_packets"),  # later fragment: no L4 header
        (v4("udp", frag_offset=3), 6, "l4_other_packets"),
    ]
    frames = [build_frame(spec) for spec, count, _ in plan for _ in range(count)]
    frames += [build_frame(v6("udp", ipv6_ext=(60,) * 7))] * 2  # one too many
    with AfPacketSender(veth_ns.pair.peer, veth_ns.namespace) as sender:
        assert sender.send(frames) == len(frames)
    assert wait_until(lambda: prog.counters().packets == len(frames))
    c = prog.counters()
    assert c.tcp_packets == 3 + 4
    assert c.udp_packets == 2 + 1
    assert c.l4_other_packets == 5 + 6
    assert c.fragments == 4 + 5 + 6
    assert c.mal_ipv6_too_many_ext == 2 and c.malformed == 2
    assert c.ipv6_packets == 3 + 2 + 1 + 4 + 5 and c.ipv4_packets == 6
