"""parse_batch over every header variant, one batch at a time (as the pipeline calls it)."""

from __future__ import annotations

import numpy as np
import pytest

from dataplane.bpf.layout import FLOE_ICMP_FLOW_PORT, FLOE_MAX_EXT_HDRS
from dataplane.packets import FrameBatch
from dataplane.parse import Malformed, parse_batch
from tests.unit.dataplane.frames import eth, frame, ipv4, ipv6, mapped, tcp, udp


def parse_one(raw: bytes, wire: int | None = None):  # type: ignore[no-untyped-def]
    batch = FrameBatch.from_frames([raw], wire_lengths=None if wire is None else [wire])
    return parse_batch(batch)


@pytest.mark.parametrize(
    ("src", "dst", "l4", "sport", "dport"),
    [
        ("10.0.0.1", "10.0.0.2", "udp", 1234, 53),
        ("10.0.0.1", "10.0.0.2", "tcp", 40000, 443),
        ("10.0.0.1", "10.0.0.2", "icmp", 8, 0),
        ("2001:db8::1", "2001:db8::2", "udp", 5353, 5353),
        ("2001:db8::1", "2001:db8::2", "tcp", 1, 22),
        ("2001:db8::1", "2001:db8::2", "icmp", 128, 0),
    ],
)
def test_well_formed(src: str, dst: str, l4: str, sport: int, dport: int) -> None:
    p = parse_one(frame(src, dst, l4, sport, dport, flags=0x12))
    assert p.malformed.tolist() == [0]
    assert p.ip_version[0] == (6 if ":" in src else 4)
    assert p.src[0].tobytes() == mapped(src)
    assert p.dst[0].tobytes() == mapped(dst)
    ports = (sport, dport) if l4 in ("tcp", "udp") else (FLOE_ICMP_FLOW_PORT,) * 2
    assert (int(p.sport[0]), int(p.dport[0])) == ports  # ICMP: request and reply, one flow
    expected_proto = {"udp": 17, "tcp": 6, "icmp": 58 if ":" in src else 1}[l4]
    assert p.proto[0] == expected_proto
    assert p.tcp_flags[0] == (0x12 if l4 == "tcp" else 0)
    assert bool(p.flow_mask[0])


def test_mixed_batch_keeps_order_and_columns() -> None:
    frames = [
        frame("10.0.0.1", "10.0.0.2", "udp", 1, 2),
        frame("::1", "::2", "tcp", 3, 4),
        eth(b"\x00" * 28, 0x0806),
        b"\x00" * 10,
    ]
    p = parse_batch(FrameBatch.from_frames(frames, ts_ns=[5, 6, 7, 8], ifindex=3))
    assert p.ip_version.tolist() == [4, 6, 0, 0]
    assert p.sport.tolist() == [1, 3, 0, 0]
    assert p.ethertype.tolist()[:3] == [0x0800, 0x86DD, 0x0806]
    assert p.malformed.tolist() == [0, 0, 0, Malformed.TRUNCATED_L2]
    assert p.flow_mask.tolist() == [True, True, False, False]
    assert p.ts_ns.tolist() == [5, 6, 7, 8]
    assert p.ifindex.tolist() == [3, 3, 3, 3]
    assert p.malformed_counts() == {"truncated_l2": 1}


@pytest.mark.parametrize("qinq", [False, True])
def test_vlan_tags(qinq: bool) -> None:
    l3 = ipv4("10.1.1.1", "10.1.1.2", 17, udp(7, 8))
    one = parse_one(eth(l3, 0x0800, vlans=(100,)))
    assert (one.vlan[0], one.vlan_inner[0], one.sport[0]) == (100, 0, 7)
    two = parse_one(eth(l3, 0x0800, vlans=(200, 300), qinq=qinq))
    assert (two.vlan[0], two.vlan_inner[0], two.dport[0], two.malformed[0]) == (200, 300, 8, 0)
    v6 = parse_one(eth(ipv6("::1", "::2", 6, tcp(1, 2)), 0x86DD, vlans=(5, 6), qinq=qinq))
    assert (v6.vlan[0], v6.vlan_inner[0], v6.ip_version[0], v6.dport[0]) == (5, 6, 6, 2)


def test_three_vlan_tags_are_malformed() -> None:
    p = parse_one(eth(ipv4("10.0.0.1", "10.0.0.2", 17, udp(1, 2)), 0x0800, vlans=(1, 2, 3)))
    assert p.malformed[0] == Malformed.VLAN_DEPTH
    assert not p.flow_mask[0]


def test_ipv4_fragments() -> None:
    first = parse_one(eth(ipv4("10.0.0.1", "10.0.0.2", 17, udp(10, 20), mf=True), 0x0800))
    assert (bool(first.fragment[0]), first.sport[0], first.dport[0]) == (True, 10, 20)
    later = parse_one(
        eth(ipv4("10.0.0.1", "10.0.0.2", 17, b"\x00\x0a\x00\x14" * 4, frag=3), 0x0800)
    )
    assert (bool(later.fragment[0]), later.sport[0], later.dport[0]) == (True, 0, 0)
    assert later.malformed[0] == 0 and later.proto[0] == 17 and bool(later.flow_mask[0])


def test_ipv4_options_shift_l4() -> None:
    p = parse_one(eth(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(80, 81, 0x01), ihl=7), 0x0800))
    assert (p.sport[0], p.dport[0], p.tcp_flags[0], p.malformed[0]) == (80, 81, 0x01, 0)


def test_ipv6_extension_headers() -> None:
    hop = (0, b"\x00" * 8)
    dst = (60, b"\x00" * 16)
    p = parse_one(eth(ipv6("::1", "::2", 17, udp(9, 10), ext=[hop, dst]), 0x86DD))
    assert (p.proto[0], p.sport[0], p.dport[0], p.malformed[0]) == (17, 9, 10, 0)
    frag0 = parse_one(eth(ipv6("::1", "::2", 6, tcp(1, 2), ext=[(44, b"\x00")]), 0x86DD))
    assert (bool(frag0.fragment[0]), frag0.sport[0], frag0.proto[0]) == (True, 1, 6)
    later = parse_one(eth(ipv6("::1", "::2", 6, b"\x00" * 20, ext=[(44, b"\x05")]), 0x86DD))
    assert (bool(later.fragment[0]), later.sport[0], later.proto[0]) == (True, 0, 6)
    limit = parse_one(eth(ipv6("::1", "::2", 17, udp(1, 2), ext=[hop] * FLOE_MAX_EXT_HDRS), 0x86DD))
    assert (limit.malformed[0], limit.sport[0]) == (0, 1)
    many = parse_one(eth(ipv6("::1", "::2", 17, udp(1, 2), ext=[hop] * (FLOE_MAX_EXT_HDRS + 1)),
                         0x86DD))
    assert many.malformed[0] == Malformed.IPV6_EXT_LIMIT


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x01" * 13, Malformed.TRUNCATED_L2),
        (eth(b"", 0x8100)[:-2] + b"\x81\x00\x00", Malformed.TRUNCATED_L2),
        (eth(ipv4("10.0.0.1", "10.0.0.2", 17, udp(1, 2))[:19], 0x0800), Malformed.TRUNCATED_L3),
        (
            eth(ipv4("10.0.0.1", "10.0.0.2", 17, udp(1, 2), version=6), 0x0800),
            Malformed.BAD_IP_VERSION,
        ),
        (eth(ipv4("10.0.0.1", "10.0.0.2", 17, udp(1, 2), ihl=4), 0x0800), Malformed.BAD_IHL),
        (
            eth(ipv4("10.0.0.1", "10.0.0.2", 17, udp(1, 2), total=200), 0x0800),
            Malformed.BAD_IP_LENGTH,
        ),
        (
            eth(ipv4("10.0.0.1", "10.0.0.2", 17, udp(1, 2), total=10), 0x0800),
            Malformed.BAD_IP_LENGTH,
        ),
        (eth(ipv6("::1", "::2", 17, udp(1, 2))[:39], 0x86DD), Malformed.TRUNCATED_L3),
        (eth(ipv6("::1", "::2", 17, udp(1, 2), payload_len=500), 0x86DD), Malformed.BAD_IP_LENGTH),
        (eth(ipv4("10.0.0.1", "10.0.0.2", 6, b"\x00" * 10), 0x0800), Malformed.TRUNCATED_L4),
        (eth(ipv4("10.0.0.1", "10.0.0.2", 17, b"\x00" * 4), 0x0800), Malformed.TRUNCATED_L4),
        (eth(ipv4("10.0.0.1", "10.0.0.2", 1, b"\x08"), 0x0800), Malformed.TRUNCATED_L4),
        (eth(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, doff=4)), 0x0800), Malformed.BAD_TCP_OFFSET),
        (eth(ipv6("::1", "::2", 17, b"\x00" * 4), 0x86DD), Malformed.TRUNCATED_L4),
        (eth(ipv6("::1", "::2", 58, b"\x80"), 0x86DD), Malformed.TRUNCATED_L4),
    ],
)
def test_malformed_classes(raw: bytes, reason: Malformed) -> None:
    p = parse_one(raw)
    assert Malformed(int(p.malformed[0])) == reason
    assert not p.flow_mask[0]
    assert p.malformed_counts() == {reason.name.lower(): 1}
    assert p.src[0].tobytes() == b"\x00" * 16


def test_snapped_frame_is_not_malformed() -> None:
    raw = frame("10.0.0.1", "10.0.0.2", "udp", 1, 2, payload=b"x" * 200)
    p = parse_one(raw[:64], wire=len(raw))
    assert p.malformed[0] == 0 and p.wire_len[0] == len(raw)


def test_counts_by_reason_over_a_batch() -> None:
    good = frame("10.0.0.1", "10.0.0.2")
    frames = [good] * 5 + [b"\x00"] * 3 + [eth(b"\x45", 0x0800)] * 2
    p = parse_batch(FrameBatch.from_frames(frames))
    assert p.malformed_counts() == {"truncated_l2": 3, "truncated_l3": 2}
    assert int(p.flow_mask.sum()) == 5


def test_empty_batch() -> None:
    p = parse_batch(FrameBatch.empty())
    assert len(p) == 0 and p.malformed_counts() == {}
    assert np.asarray(p.src).shape == (0, 16)


def test_headers_ending_at_the_buffer_end() -> None:
    """Header windows that run past the buffer are read safely (last frame, no slack)."""
    tiny_udp = eth(ipv4("10.0.0.1", "10.0.0.2", 17, udp(7, 9, payload=b"")), 0x0800)
    tiny_tcp = eth(ipv6("::1", "::2", 6, tcp(5, 6, 0x18)), 0x86DD)
    for raw in (tiny_udp, tiny_tcp):
        p = parse_batch(FrameBatch.from_frames([frame("10.0.0.1", "10.0.0.2"), raw]))
        assert p.malformed.tolist() == [0, 0]
    p = parse_batch(FrameBatch.from_frames([tiny_udp]))
    assert (p.sport[0], p.dport[0]) == (7, 9)
    p = parse_batch(FrameBatch.from_frames([tiny_tcp]))
    assert (p.sport[0], p.dport[0], p.tcp_flags[0]) == (5, 6, 0x18)


def _strided(frames: list[bytes], stride: int) -> FrameBatch:
    """Frames in fixed slots of `stride` bytes (the AF_XDP layout), snapped to the slot."""
    n = len(frames)
    data = np.zeros(n * stride, np.uint8)
    for i, f in enumerate(frames):
        cut = f[:stride]
        data[i * stride : i * stride + len(cut)] = np.frombuffer(cut, np.uint8)
    lengths = np.array([min(len(f), stride) for f in frames], np.uint32)
    wire = np.array([len(f) for f in frames], np.uint32)
    return FrameBatch(
        data,
        np.arange(n, dtype=np.int64) * stride,
        lengths,
        wire,
        np.zeros(n, np.int64),
        np.zeros(n, np.uint32),
        stride=stride,
    )


@pytest.mark.parametrize("uniform", [True, False])
def test_fixed_slot_layout_parses_like_packed_frames(uniform: bool) -> None:
    """The 2-D view fast path (all headers at one offset) and the gather path agree."""
    same = [
        frame("10.0.0.1", "10.0.0.2", k, 1 + i, 2, flags=0x10)
        for i, k in enumerate(["udp", "tcp"] * 8)
    ]
    mixed = [
        *same,
        frame("::1", "::2", "tcp", 5, 6),
        frame("10.0.0.1", "10.0.0.2", vlans=(3,)),
        b"\x00" * 10,
        frame("10.0.0.1", "10.0.0.2", payload=b"p" * 300),
    ]
    frames = same if uniform else mixed
    a = parse_batch(
        FrameBatch.from_frames([f[:128] for f in frames], wire_lengths=[len(f) for f in frames])
    )
    b = parse_batch(_strided(frames, 128))
    for name in (
        "ethertype",
        "vlan",
        "vlan_inner",
        "ip_version",
        "proto",
        "src",
        "dst",
        "sport",
        "dport",
        "tcp_flags",
        "fragment",
        "malformed",
        "wire_len",
    ):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert int(b.flow_mask.sum()) == (16 if uniform else 19)
