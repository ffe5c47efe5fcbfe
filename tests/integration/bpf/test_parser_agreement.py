"""The XDP program and parse_batch classify the same frames the same way.

Every frame goes once through the kernel program (BPF_PROG_RUN, inline mode: counters and the
LRU flow map) and through parse_batch / FlowTable; flow keys, canonical direction and the
malformed reason must agree frame by frame.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from dataplane.bpf import XdpProgram
from dataplane.bpf.layout import FLOE_ICMP_HDR_LEN, FLOE_MAX_EXT_HDRS
from dataplane.bpf.testrun import prog_test_run
from dataplane.flowtable import FlowTable
from dataplane.packets import FrameBatch
from dataplane.parse import KERNEL_MALFORMED, Malformed, parse_batch
from dataplane.trafficgen import MALFORMED_REASONS, FrameSpec, build_frame, malformed_frame
from tests.support.topology import VethNs

pytestmark = pytest.mark.root


V4 = FrameSpec(src="10.6.0.1", dst="10.6.0.2")
V6 = FrameSpec(src="fd00:6::1", dst="fd00:6::2")
R4 = FrameSpec(src=V4.dst, dst=V4.src)
R6 = FrameSpec(src=V6.dst, dst=V6.src)


def _well_formed() -> list[bytes]:
    specs = [
        replace(V4, proto="tcp", sport=40000, dport=443),
        replace(R4, proto="tcp", sport=443, dport=40000, tcp_flags=0x12),
        replace(V4, proto="udp", sport=53, dport=53),  # equal ports: address decides
        replace(V4, proto="icmp", sport=8, dport=0),  # echo request ...
        replace(R4, proto="icmp", sport=0, dport=0),  # ... reply
        replace(V6, proto="icmpv6", sport=128, dport=0),
        replace(R6, proto="icmpv6", sport=129, dport=0),
        replace(V4, proto="udp", vlans=(7,)),
        replace(V6, proto="tcp", vlans=(100, 200)),  # QinQ: outer id keys the flow
        replace(V4, proto="udp", sport=1, dport=2, more_fragments=True),  # first fragment
        replace(V4, proto="udp", sport=1, dport=2, frag_offset=3),  # non-first: no ports
        replace(V6, proto="udp", sport=3, dport=4, ipv6_ext=(44,), more_fragments=True),
        replace(V6, proto="udp", sport=3, dport=4, ipv6_ext=(44,), frag_offset=2),
        replace(V6, proto="udp", ipv6_ext=(0, 43, 51, 60)),
        replace(V6, proto="tcp", sport=9, ipv6_ext=(60,) * FLOE_MAX_EXT_HDRS),
        replace(V4, proto=47),  # GRE: a portless protocol
    ]
    frames = [build_frame(spec) for spec in specs]
    arp = bytes(6) + bytes.fromhex("020000000001") + b"\x08\x06" + bytes(28)
    old_qinq = bytearray(build_frame(replace(V4, proto="udp", sport=7, vlans=(300, 30))))
    old_qinq[12:14] = b"\x91\x00"  # pre-802.1ad outer TPID: still a tag to both parsers
    icmp_short = bytearray(build_frame(replace(V4, proto="icmp", payload=0)))
    del icmp_short[14 + 20 + FLOE_ICMP_HDR_LEN - 1:]
    icmp_short[16:18] = (20 + FLOE_ICMP_HDR_LEN - 1).to_bytes(2, "big")  # total length fits
    return [*frames, bytes(old_qinq), arp, bytes(icmp_short)]


def _kernel_reason(delta: dict[str, int]) -> Malformed:
    hit = [name.removeprefix("mal_") for name, value in delta.items()
           if name.startswith("mal_") and value]
    assert len(hit) <= 1 and delta["malformed"] == len(hit), delta
    return KERNEL_MALFORMED[hit[0]] if hit else Malformed.OK


def test_kernel_and_parse_batch_agree(veth_ns: VethNs,
                                      make_xdp: Callable[..., XdpProgram]) -> None:
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    frames = _well_formed() + [malformed_frame(r) for r in MALFORMED_REASONS]
    frames.append(b"\x02" * 14 + b"\x81\x00")  # tag cut short (l2_truncated can't be sent)

    kernel: list[Malformed] = []
    fd = prog.prog_fd()
    try:
        for frame in frames:
            before = prog.counters()
            prog_test_run(fd, frame, ingress_ifindex=prog.ifindex)
            kernel.append(_kernel_reason((prog.counters() - before).as_dict()))
    finally:
        os.close(fd)
    parsed = parse_batch(FrameBatch.from_frames(frames, ifindex=prog.ifindex))
    assert [Malformed(int(m)) for m in parsed.malformed] == kernel

    # flows: same canonical keys, same direction (initiator) and per-direction counts
    table = FlowTable(capacity=64)
    table.update(parsed)
    mine = table.flush()
    theirs = prog.read_flows()

    def keyed(flows: np.ndarray) -> dict[tuple[object, ...], tuple[int, int, int, int]]:
        return {
            (bytes(f["src_addr"]), bytes(f["dst_addr"]), int(f["src_port"]), int(f["dst_port"]),
             int(f["proto"]), int(f["ip_version"]), int(f["vlan"]), int(f["ifindex"])):
            (int(f["packets_fwd"]), int(f["bytes_fwd"]), int(f["packets_rev"]),
             int(f["bytes_rev"]))
            for f in flows
        }

    assert keyed(mine) == keyed(theirs)
    assert len(theirs) == 14  # 17 well-formed IP frames: replies join their request's flow
    for proto in (1, 58):  # ICMP echo request and reply: one flow, one packet each way
        (icmp,) = [f for f in mine if f["proto"] == proto]
        assert (int(icmp["packets_fwd"]), int(icmp["packets_rev"])) == (1, 1)
