"""The parser agrees with the kernel side: frames from dataplane.trafficgen (the generator the
XDP tests use) parse to their spec, and each kernel malformed class maps to one reason here."""

from __future__ import annotations

import pytest

from dataplane.bpf.layout import COUNTER_FIELDS, FLOE_ICMP_FLOW_PORT
from dataplane.packets import FrameBatch
from dataplane.parse import KERNEL_MALFORMED, Malformed, parse_batch
from dataplane.trafficgen import MALFORMED_REASONS, FrameSpec, build_frame, malformed_frame
from tests.unit.dataplane.frames import mapped


def test_every_kernel_reason_is_mapped() -> None:
    kernel = {f.removeprefix("mal_") for f in COUNTER_FIELDS if f.startswith("mal_")}
    assert set(KERNEL_MALFORMED) == kernel


@pytest.mark.parametrize("reason", MALFORMED_REASONS)
def test_kernel_malformed_classes(reason: str) -> None:
    p = parse_batch(FrameBatch.from_frames([malformed_frame(reason)]))
    assert Malformed(int(p.malformed[0])) == KERNEL_MALFORMED[reason]


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
    ports = (spec.sport, spec.dport) if spec.proto in ("tcp", "udp") else (FLOE_ICMP_FLOW_PORT,) * 2
    assert (int(p.sport[0]), int(p.dport[0])) == ports
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
