"""The traffic generator builds exactly the frames asked for: checked by an independent parser
(the pipeline's numpy parse_batch) and by recomputing checksums."""

from __future__ import annotations

import ipaddress
import struct
from collections import Counter

import pytest

from dataplane.packets import FrameBatch
from dataplane.parse import parse_batch
from dataplane.trafficgen import (
    MALFORMED_REASONS,
    FrameSpec,
    build_frame,
    malformed_frame,
    mixed_frames,
)

SPECS = [
    FrameSpec(src="10.0.0.1", dst="10.0.0.2", proto="tcp", sport=1111, dport=22),
    FrameSpec(src="10.0.0.1", dst="10.0.0.2", proto="udp", sport=53, dport=5353, vlans=(7,)),
    FrameSpec(src="192.0.2.1", dst="192.0.2.9", proto="icmp"),
    FrameSpec(src="fd00::1", dst="fd00::2", proto="tcp", sport=443, dport=50000, vlans=(1, 2)),
    FrameSpec(src="2001:db8::1", dst="2001:db8::2", proto="udp", sport=1, dport=2, payload=200),
    FrameSpec(src="fd00::1", dst="fd00::2", proto="icmpv6"),
]
PROTO = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(total)


def test_frames_parse_back_to_the_spec() -> None:
    parsed = parse_batch(FrameBatch.from_frames([build_frame(s) for s in SPECS]))
    for i, spec in enumerate(SPECS):
        version = ipaddress.ip_address(spec.src).version
        assert parsed.malformed[i] == 0, spec
        assert parsed.ip_version[i] == version
        assert parsed.proto[i] == PROTO[str(spec.proto)]
        assert parsed.vlan[i] == (spec.vlans[0] if spec.vlans else 0)
        src = ipaddress.IPv6Address(bytes(parsed.src[i]))
        assert str(src.ipv4_mapped or src) == spec.src
        if spec.proto in ("tcp", "udp"):
            assert (parsed.sport[i], parsed.dport[i]) == (spec.sport, spec.dport)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.proto}-{s.src}")
def test_checksums_verify(spec: FrameSpec) -> None:
    frame = build_frame(spec)
    l3 = 14 + 4 * len(spec.vlans)
    if ipaddress.ip_address(spec.src).version == 4:
        ihl = (frame[l3] & 0x0F) * 4
        assert _csum(frame[l3:l3 + ihl]) == 0xFFFF
        segment = frame[l3 + ihl:]
        pseudo = frame[l3 + 12:l3 + 20] + struct.pack("!BBH", 0, frame[l3 + 9], len(segment))
    else:
        segment = frame[l3 + 40:]
        pseudo = frame[l3 + 8:l3 + 40] + struct.pack("!I3xB", len(segment), frame[l3 + 6])
    covered = segment if spec.proto == "icmp" else pseudo + segment
    assert _csum(covered) == 0xFFFF


def test_every_malformed_variant_is_malformed_for_both_parsers() -> None:
    frames = [malformed_frame(reason) for reason in MALFORMED_REASONS]
    parsed = parse_batch(FrameBatch.from_frames(frames))
    assert all(parsed.malformed != 0), dict(zip(MALFORMED_REASONS, parsed.malformed, strict=True))
    with pytest.raises(ValueError, match="unknown malformed reason"):
        malformed_frame("l2_truncated")


def test_mixed_frames_are_well_formed_with_heavy_hitters() -> None:
    frames = mixed_frames(flows=48, heavy=3)
    parsed = parse_batch(FrameBatch.from_frames(frames))
    assert parsed.malformed_counts() == {}
    assert set(parsed.ip_version.tolist()) == {4, 6}
    assert {1, 6, 17, 58} <= set(parsed.proto.tolist())
    counts = sorted(Counter(frames).values(), reverse=True)
    assert sum(counts[:3]) >= len(frames) // 2  # three heavy hitters carry half the frames
    assert mixed_frames(flows=48, heavy=3) == frames  # deterministic
