"""Seeded random traffic through a small FlowTable: whatever the churn, collisions, timeouts,
out-of-order or extreme timestamps, every packet and byte comes out in exactly one ended
record, and every flow created is accounted as live, expired or evicted."""

from __future__ import annotations

import random

import numpy as np

from dataplane.flowtable import EndReason, FlowRecords, FlowTable
from dataplane.packets import FrameBatch
from dataplane.parse import parse_batch
from tests.unit.dataplane.frames import frame

S = 1_000_000_000
INT64_MAX = (1 << 63) - 1


def _random_frame(rng: random.Random) -> bytes:
    v6 = rng.random() < 0.3
    host = rng.randrange(1, 12)
    peer = rng.randrange(1, 12)
    src = f"2001:db8::{host:x}" if v6 else f"10.0.0.{host}"
    dst = f"2001:db8::{peer:x}" if v6 else f"10.0.0.{peer}"
    proto = rng.choice(["udp", "tcp"])
    flags = rng.choice([0x02, 0x12, 0x10, 0x11, 0x04, 0x3F, 0x00])
    sport = rng.choice([0, 1, 80, 65535, rng.randrange(65536)])
    dport = rng.choice([0, 53, 65535, rng.randrange(65536)])
    vlans = rng.choice([(), (rng.randrange(4096),), (1, 4095)])
    payload = b"p" * rng.randrange(0, 200)
    return frame(src, dst, proto, sport, dport, flags=flags, vlans=vlans, payload=payload)


def _totals(records: list[FlowRecords]) -> tuple[int, int]:
    recs = np.concatenate(records)
    packets = int(recs["packets_fwd"].sum()) + int(recs["packets_rev"].sum())
    octets = int(recs["bytes_fwd"].sum()) + int(recs["bytes_rev"].sum())
    return packets, octets


def test_random_traffic_conserves_every_packet_and_byte() -> None:
    rng = random.Random(11252026)
    ft = FlowTable(capacity=64, idle_timeout=2.0, active_timeout=5.0)
    ended: list[FlowRecords] = []
    sent_packets = sent_bytes = 0
    clock = S
    for step in range(300):
        n = rng.randrange(1, 48)  # never more new flows than the capacity: nothing overflows
        frames = [_random_frame(rng) for _ in range(n)]
        clock += rng.choice([0, 1, S // 10, S, 3 * S])
        stamps = [max(0, clock - rng.choice([0, 0, 0, 2 * S])) for _ in range(n)]  # some late
        wires = [len(f) + rng.choice([0, 0, 1400, 65535, 1 << 20]) for f in frames]  # GRO-sized too
        ft.update(parse_batch(FrameBatch.from_frames(frames, ts_ns=stamps, wire_lengths=wires)))
        sent_packets += n
        sent_bytes += sum(wires)
        if step % 7 == 0:
            ended.append(ft.expire(clock, limit=rng.choice([None, 3, 50])))
        if step % 11 == 0:
            ft.drain_updates(limit=rng.choice([None, 5]))
        live = ft.stats()
        assert 0 <= live.live <= ft.capacity
    ended.append(ft.expire(clock))
    ended.append(ft.flush())
    stats = ft.stats()
    assert stats.overflow == 0 and stats.evicted > 0 and stats.expired > 0  # all paths taken
    assert stats.created == stats.expired + stats.evicted + len(
        ended[-1][ended[-1]["end_reason"] == EndReason.FLUSHED]
    )
    assert _totals(ended) == (sent_packets, sent_bytes)
    recs = np.concatenate(ended)
    assert (recs["first_seen_ns"] <= recs["last_seen_ns"]).all()


def test_extreme_timestamps_keep_flows_ordered() -> None:
    ft = FlowTable(capacity=8, idle_timeout=1.0)
    f = frame("10.0.0.1", "10.0.0.2", "udp", 1, 2)
    ft.update(parse_batch(FrameBatch.from_frames([f, f], ts_ns=[INT64_MAX, 1])))
    recs = ft.expire(INT64_MAX - 2 * S)  # not idle (last seen INT64_MAX), but active too long
    assert len(recs) == 1
    r = recs[0]
    assert r["end_reason"] == EndReason.ACTIVE_TIMEOUT
    assert (int(r["first_seen_ns"]), int(r["last_seen_ns"])) == (1, INT64_MAX)
    assert int(r["packets_fwd"]) == 2


def test_eviction_spares_flows_of_the_batch_being_applied() -> None:
    """A full table, then one batch with packets of the two oldest flows plus new flows that
    force an eviction: the old flows' packets must land on them, not on a dead or reused id."""
    ft = FlowTable(capacity=4, evict_fraction=1.0)
    old = [frame("10.0.0.1", "10.0.0.2", "udp", p, 53) for p in (1, 2, 3, 4)]
    ft.update(parse_batch(FrameBatch.from_frames(old, ts_ns=[1 * S, 2 * S, 3 * S, 4 * S])))
    new = [frame("10.0.0.1", "10.0.0.2", "udp", p, 53) for p in (5, 6)]
    ft.update(parse_batch(FrameBatch.from_frames([old[0], old[1], *new], ts_ns=5 * S)))
    evicted = ft.expire(5 * S)  # nothing has timed out: only the evicted
    assert sorted(int(r["src_port"]) for r in evicted) == [3, 4]
    live = ft.flush()
    got = {int(r["src_port"]): int(r["packets_fwd"]) for r in live}
    assert got == {1: 2, 2: 2, 5: 1, 6: 1}
    assert ft.stats().overflow == 0
