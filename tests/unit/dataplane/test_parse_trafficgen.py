"""The parser agrees with the kernel side: frames from dataplane.trafficgen (the generator the
XDP tests use) parse to their spec, and each kernel malformed class maps to one reason here."""

from __future__ import annotations

import pytest

from dataplane.packets import FrameBatch
from dataplane.parse import Malformed, parse_batch
from dataplane.trafficgen import MALFORMED_REASONS, FrameSpec, build_frame, malformed_frame
from tests.unit.dataplane.frames import mapped

KERNEL_TO_PARSE = {
    "l2_truncated": Malformed.TRUNCATED_L2,
    "vlan_truncated": Malformed.TRUNCATED_L2,
    "vlan_too_deep": Malformed.VLAN_DEPTH,
    "l3_truncated": Malformed.TRUNCATED_L3,
    "ipv4_bad_version": Malformed.BAD_IP_VERSION,
    "ipv4_bad_ihl": Malformed.BAD_IHL,
    "ipv4_bad_total_len": Malformed.BAD_IP_LENGTH,
    "ipv6_bad_version": Malformed.BAD_IP_VERSION,
    "ipv6_ext_truncated": Malformed.TRUNCATED_L3,
    "ipv6_too_many_ext": Malformed.IPV6_EXT_LIMIT,
    "l4_truncated": Malformed.TRUNCATED_L4,
    "tcp_bad_doff": Malformed.BAD_TCP_OFFSET,
}


@pytest.mark.parametrize("reason", MALFORMED_REASONS)
def test_kernel_malformed_classes(reason: str) -> None:
    p = parse_batch(FrameBatch.from_frames([malformed_frame(reason)]))
    assert Malformed(int(p.malformed[0])) == KERNEL_TO_PARSE[reason]


SPECS = [
    FrameSpec(),
    FrameSpec(proto="tcp", tcp_flags=0x11),
    FrameSpec(proto="icmp", sport=8, dport=0),
    FrameSpec(src="fd00::1", dst="fd00::2", proto="icmpv6", sport=128, dport=0),
    FrameSpec(src="fd00::1", dst="fd00::2", proto="tcp", vlans=(10, 20)),
    FrameSpec(src="10.0.0.3", dst="10.0.0.4", vlans=(7,)),
    FrameSpec(src="fd00::1", dst="fd00::2", ipv6_ext=(0, 43, 60)),
    FrameSpec(src="fd00::1", dst="fd00::2", proto="tcp", ipv6_ext=(51,)),
    FrameSpec(src="fd00::1", dst="fd00::2", ipv6_ext=(44,), more_fragments=True),
    FrameSpec(more_fragments=True),
]


@pytest.mark.parametrize("spec", SPECS, ids=range(len(SPECS)))
def test_generator_frames_parse_to_their_spec(spec: FrameSpec) -> None:
    p = parse_batch(FrameBatch.from_frames([build_frame(spec)]))
    assert p.malformed[0] == 0
    assert p.src[0].tobytes() == mapped(spec.src) and p.dst[0].tobytes() == mapped(spec.dst)
    assert (int(p.sport[0]), int(p.dport[0])) == (spec.sport, spec.dport)
    assert p.vlan[0] == (spec.vlans[0] if spec.vlans else 0)
    assert p.vlan_inner[0] == (spec.vlans[1] if len(spec.vlans) > 1 else 0)
    assert bool(p.fragment[0]) == (spec.more_fragments or spec.frag_offset > 0)
    if spec.proto == "tcp":
        assert p.tcp_flags[0] == spec.tcp_flags


def test_later_fragments_have_no_ports() -> None:
    for spec in (
        FrameSpec(frag_offset=3),
        FrameSpec(src="fd00::1", dst="fd00::2", ipv6_ext=(44,), frag_offset=3),
    ):
        p = parse_batch(FrameBatch.from_frames([build_frame(spec)]))
        assert (p.malformed[0], p.sport[0], p.dport[0], bool(p.fragment[0])) == (0, 0, 0, True)
        assert p.proto[0] == 17
