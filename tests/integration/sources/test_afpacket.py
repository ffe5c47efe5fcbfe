"""AF_PACKET TPACKET_V3 source on a veth in a namespace: exact frames, VLAN tags restored."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from dataplane.netns import Topology
from dataplane.packets import FrameBatch
from dataplane.parse import parse_batch
from dataplane.sources import Source
from dataplane.sources.afpacket import AfPacketSource
from dataplane.trafficgen import AfPacketSender, FrameSpec, build_frame

pytestmark = pytest.mark.root


def _collect(src: AfPacketSource, want: int, timeout: float = 3.0) -> FrameBatch:
    parts = []
    got = 0
    deadline = time.monotonic() + timeout
    while got < want and time.monotonic() < deadline:
        b = src.read_batch(4096, 0.05)
        assert b is not None
        parts.append(b)
        got += len(b)
    extra = src.read_batch(4096, 0.1)
    assert extra is not None
    parts.append(extra)
    return FrameBatch.concat(parts)


def test_receives_exact_frames_with_vlan_tags(make_topology: Callable[[str], Topology]) -> None:
    topo = make_topology("srcp")
    ns = topo.add_namespace()
    pair = topo.add_veth(namespace=ns)
    specs = [
        FrameSpec(src="10.9.0.1", dst="10.9.0.2", proto="udp", sport=5000, dport=53),
        FrameSpec(src="fd09::1", dst="fd09::2", proto="tcp", sport=40000, dport=443),
        FrameSpec(src="10.9.0.1", dst="10.9.0.2", proto="udp", vlans=(42,)),
        FrameSpec(src="10.9.0.1", dst="10.9.0.2", proto="tcp", vlans=(100, 200)),
    ]
    frames = [build_frame(s) for s in specs for _ in range(250)]
    src = AfPacketSource(pair.host, block_size=1 << 16, block_count=8)
    assert isinstance(src, Source)
    try:
        with AfPacketSender(pair.peer, ns) as sender:
            assert sender.send(frames) == len(frames)
        batch = _collect(src, len(frames))
        strangers = {batch.frame(i).hex() for i in range(len(batch))} - {f.hex() for f in frames}
        assert not strangers
        assert len(batch) == len(frames)
        got = sorted(batch.frame(i) for i in range(len(batch)))
        assert got == sorted(frames)  # byte-exact, tags included
        assert sorted(batch.wire_lengths.tolist()) == sorted(len(f) for f in frames)
        parsed = parse_batch(batch)
        assert parsed.malformed_counts() == {}
        assert sorted(set(parsed.vlan.tolist())) == [0, 42, 100]
        assert set(parsed.vlan_inner.tolist()) == {0, 200}
        assert (parsed.ts_ns > 1_600_000_000 * 10**9).all()
        assert src.loss() == {"kernel_drops": 0}
    finally:
        src.close()
    assert src.read_batch(10, 0) is None


def test_ring_overflow_counts_kernel_drops(make_topology: Callable[[str], Topology]) -> None:
    topo = make_topology("srcq")
    ns = topo.add_namespace()
    pair = topo.add_veth(namespace=ns)
    frame = build_frame(FrameSpec(src="10.9.1.1", dst="10.9.1.2", proto="udp"))
    src = AfPacketSource(pair.host, block_size=1 << 14, block_count=2, frame_size=2048)
    try:
        sent = 3000
        with AfPacketSender(pair.peer, ns) as sender:
            assert sender.send([frame] * sent) == sent  # nobody reads: the ring overflows
        # every frame ends up delivered or counted as a kernel drop; on a busy machine the
        # softirq may lag, so wait for the accounts to close instead of a fixed sleep
        parts: list[FrameBatch] = []
        delivered = drops = 0
        deadline = time.monotonic() + 5.0
        while delivered + drops < sent and time.monotonic() < deadline:
            b = src.read_batch(4096, 0.05)
            assert b is not None
            parts.append(b)
            delivered += len(b)
            drops = src.loss()["kernel_drops"]
        assert drops > 0
        assert delivered + drops == sent
        assert len(FrameBatch.concat(parts)) == delivered
    finally:
        src.close()
