"""Aggregator: deterministic top talkers, distributions and per-interface rates."""

from __future__ import annotations

import numpy as np

from dataplane.aggregate import Aggregator, PortBands
from dataplane.packets import FrameBatch
from dataplane.parse import parse_batch
from tests.unit.dataplane.frames import eth, frame

S = 1_000_000_000


def test_tick_snapshot() -> None:
    agg = Aggregator(top_n=3)
    heavy = frame("10.0.0.1", "10.0.0.2", "tcp", 40000, 443, payload=b"z" * 1000)
    light = frame("10.0.0.3", "10.0.0.2", "udp", 5353, 53)
    v6 = frame("2001:db8::1", "2001:db8::2", "udp", 60000, 50000)
    ping = frame("10.0.0.4", "10.0.0.2", "icmp", 8, 0)
    arp = eth(b"\x00" * 28, 0x0806)
    frames = [heavy] * 4 + [light] * 10 + [v6] * 2 + [ping, arp, b"\x00" * 5]
    agg.add(parse_batch(FrameBatch.from_frames(frames, ts_ns=1 * S, ifindex=7)))
    agg.add(parse_batch(FrameBatch.from_frames([light], ts_ns=2 * S, ifindex=9)))
    snap = agg.tick(3 * S)
    assert snap.seconds == 2.0
    assert [(i.ifindex, i.packets, i.malformed, i.non_ip) for i in snap.interfaces] == [
        (7, 19, 1, 1),
        (9, 1, 0, 0),
    ]
    iface7 = snap.interfaces[0]
    total7 = 4 * len(heavy) + 10 * len(light) + 2 * len(v6) + len(ping) + len(arp) + 5
    assert iface7.bytes == total7 and iface7.pps == 9.5 and iface7.bps == total7 * 8 / 2
    # 10.0.0.2 receives everything v4: it tops both lists
    assert snap.top_hosts_by_bytes[0].key == "10.0.0.2"
    assert snap.top_hosts_by_bytes[0].packets == 4 + 11 + 1
    assert [t.key for t in snap.top_hosts_by_bytes] == ["10.0.0.2", "10.0.0.1", "10.0.0.3"]
    assert [t.key for t in snap.top_hosts_by_packets] == ["10.0.0.2", "10.0.0.3", "10.0.0.1"]
    assert [(t.key, t.packets) for t in snap.top_ports_by_packets] == [
        ("53", 11),
        ("443", 4),
        ("50000", 2),
    ]
    assert snap.top_ports_by_bytes[0].key == "443"
    names = {p.name: p.packets for p in snap.protocols}
    assert names == {"tcp": 4, "udp": 13, "icmp": 1, "non-ip": 1}
    assert snap.port_bands == PortBands(well_known=15, registered=0, dynamic=2)
    assert snap.malformed == {"truncated_l2": 1}
    # the next tick starts empty, at the previous end
    nxt = agg.tick(4 * S)
    assert nxt.start_ns == 3 * S and nxt.interfaces == [] and nxt.top_hosts_by_bytes == []


def test_host_buffer_is_bounded_under_a_flood_of_sources() -> None:
    agg = Aggregator(top_n=2, host_buffer=64)
    big = frame("10.9.9.9", "10.0.0.1", "udp", 1, 2, payload=b"q" * 500)
    for i in range(20):
        frames = [frame(f"10.1.{i}.{j}", "10.0.0.1", "udp", 1, 2) for j in range(20)]
        agg.add(parse_batch(FrameBatch.from_frames([*frames, big], ts_ns=S)))
    snap = agg.tick(2 * S)
    assert snap.hosts_truncated > 0
    assert [t.key for t in snap.top_hosts_by_bytes] == ["10.0.0.1", "10.9.9.9"]
    assert snap.top_hosts_by_bytes[1].packets == 20


def test_per_flow_path_matches_per_packet_path() -> None:
    """Aggregator.add(parsed, flows=table.last_deltas()) gives exactly the per-packet result."""
    from dataplane.flowtable import FlowTable

    rng = np.random.default_rng(3)
    batches = []
    for step in range(6):
        frames = []
        for _ in range(200):
            i = int(rng.integers(0, 40))
            kind = ("tcp", "udp", "icmp")[i % 3]
            src, dst = (f"10.0.{i}.1", "10.0.0.9") if i % 4 else ("fd00::9", f"fd00::{i + 1:x}")
            if i % 7 == 0:
                src, dst = dst, src  # replies
            sport, dport = (8, 0) if kind == "icmp" else (1000 + i, 443 - i % 3)
            frames.append(frame(src, dst, kind, sport, dport, vlans=(5,) if i % 5 == 0 else ()))
        frames += [
            frame("10.1.1.1", "10.1.1.1", "udp", 7, 7),
            eth(b"\x00" * 28, 0x0806),
            b"\x00" * 9,
        ]
        batches.append(parse_batch(FrameBatch.from_frames(frames, ts_ns=(step + 1) * S)))
    per_packet, per_flow = Aggregator(top_n=5), Aggregator(top_n=5)
    table = FlowTable(capacity=4096, track_deltas=True)
    for p in batches:
        per_packet.add(p)
        table.update(p)
        per_flow.add(p, flows=table.last_deltas())
    assert per_flow.tick(10 * S) == per_packet.tick(10 * S)
