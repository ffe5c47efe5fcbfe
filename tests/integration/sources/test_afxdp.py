"""AF_XDP tap source on a veth: exact receive counts, and loss counted when the consumer stalls."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from dataplane.bpf import XdpProgram
from dataplane.flowtable import FlowTable
from dataplane.netns import Topology
from dataplane.packets import FrameBatch
from dataplane.parse import parse_batch
from dataplane.sources.afxdp import AfXdpSource
from dataplane.trafficgen import AfPacketSender, FrameSpec, build_frame
from tests.support.topology import wait_until

pytestmark = pytest.mark.root


def _collect(src: AfXdpSource, want: int, timeout: float = 3.0) -> FrameBatch:
    parts = []
    got = 0
    deadline = time.monotonic() + timeout
    while got < want and time.monotonic() < deadline:
        b = src.read_batch(1024, 0.05)
        assert b is not None
        if len(b):
            parts.append(b)
            got += len(b)
    # nothing more should arrive
    extra = src.read_batch(1024, 0.1)
    assert extra is not None
    parts.append(extra)
    return FrameBatch.concat(parts)


def _setup(make_topology: Callable[[str], Topology], make_xdp: Callable[..., XdpProgram]):  # type: ignore[no-untyped-def]
    topo = make_topology("srcx")
    ns = topo.add_namespace()
    pair = topo.add_veth(namespace=ns)
    prog = make_xdp(pair.host, mode="tap")
    return ns, pair, prog


def test_receives_exactly_n_known_frames(
    make_topology: Callable[[str], Topology], make_xdp: Callable[..., XdpProgram]
) -> None:
    ns, pair, prog = _setup(make_topology, make_xdp)
    specs = [
        FrameSpec(src="10.7.0.1", dst="10.7.0.2", proto="udp", sport=1000 + i, dport=53)
        for i in range(50)
    ] + [FrameSpec(src="fd07::1", dst="fd07::2", proto="tcp", sport=40000, dport=443, vlans=(10,))]
    frames = [build_frame(s) for s in specs for _ in range(20)]  # 1020 frames, 51 flows
    src = AfXdpSource(pair.host, prog)
    try:
        assert len(src.sockets) == len(src.queues) >= 1
        with AfPacketSender(pair.peer, ns) as sender:
            assert sender.send(frames) == len(frames)
        batch = _collect(src, len(frames))
        assert len(batch) == len(frames)
        assert sorted(batch.wire_lengths.tolist()) == sorted(len(f) for f in frames)
        parsed = parse_batch(batch)
        assert parsed.malformed_counts() == {}
        ft = FlowTable(capacity=1024)
        ft.update(parsed)
        recs = ft.drain_updates()
        assert len(recs) == 51
        assert set(recs["packets_fwd"].tolist()) == {20}
        v6 = recs[recs["ip_version"] == 6]
        assert len(v6) == 1 and v6[0]["vlan"] == 10 and v6[0]["dst_port"] == 443
        assert sum(src.loss().values()) == 0
        assert wait_until(lambda: prog.counters().redirected >= len(frames))
    finally:
        src.close()


def test_stalled_consumer_loss_is_counted(
    make_topology: Callable[[str], Topology], make_xdp: Callable[..., XdpProgram]
) -> None:
    ns, pair, prog = _setup(make_topology, make_xdp)
    frame = build_frame(FrameSpec(src="10.8.0.1", dst="10.8.0.2", proto="udp"))
    src = AfXdpSource(pair.host, prog, frames=256, ring_size=256)
    try:
        sent = 2000
        with AfPacketSender(pair.peer, ns) as sender:
            assert sender.send([frame] * sent) == sent  # nobody reads meanwhile
        assert wait_until(lambda: prog.counters().packets >= sent)
        batch = _collect(src, sent, timeout=1.0)
        loss = src.loss()
        assert len(batch) <= 256 * len(src.sockets)
        assert loss["fill_ring_empty"] > 0
        # every frame the program redirected was either received or counted as lost, once
        assert prog.counters().redirected == sent
        assert len(batch) + sum(loss.values()) == sent
        # and the consumer recovers once it drains again
        with AfPacketSender(pair.peer, ns) as sender:
            assert sender.send([frame] * 100) == 100
        assert len(_collect(src, 100)) == 100
        # statistics that can no longer be read keep their last values: loss never resets
        before = src.loss()
        for xsk in src.sockets:
            xsk.sock.close()
        assert src.loss() == before and sum(before.values()) >= sent - len(batch)
    finally:
        src.close()


def test_one_socket_per_rx_queue(
    make_topology: Callable[[str], Topology], make_xdp: Callable[..., XdpProgram]
) -> None:
    """A two-queue veth: the sender spreads flows over both TX queues (flow hash), each
    lands on its RX queue; both sockets receive and the total is exact."""
    topo = make_topology("srcm")
    ns = topo.add_namespace()
    pair = topo.add_veth(namespace=ns, queues=2)
    host, peer = pair.host, pair.peer
    prog = make_xdp(host, mode="tap")
    src = AfXdpSource(host, prog)
    try:
        assert src.queues == [0, 1] and len(src.sockets) == 2
        frames = [
            build_frame(FrameSpec(src="10.6.0.1", dst="10.6.0.2", proto="udp", sport=p))
            for p in range(2000, 2064)
        ] * 10
        with AfPacketSender(peer, ns) as sender:
            assert sender.send(frames) == len(frames)
        assert wait_until(lambda: sum(x.pending() for x in src.sockets) >= len(frames))
        pending = [x.pending() for x in src.sockets]
        assert all(p > 0 for p in pending), pending
        batch = _collect(src, len(frames))
        assert len(batch) == len(frames)
        assert sum(src.loss().values()) == 0
    finally:
        src.close()
