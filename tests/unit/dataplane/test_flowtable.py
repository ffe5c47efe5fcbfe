"""FlowTable semantics: bidirectional merge, counters, state, timeouts, eviction, capacity."""

from __future__ import annotations

import numpy as np

from dataplane.bpf.layout import FLOE_ICMP_FLOW_PORT
from dataplane.flowtable import EndReason, FlowState, FlowTable
from dataplane.packets import FrameBatch
from dataplane.parse import parse_batch
from tests.unit.dataplane.frames import frame, mapped

S = 1_000_000_000  # ns


def batch(frames: list[bytes], ts: list[int] | int = 0, ifindex: int = 1):  # type: ignore[no-untyped-def]
    return parse_batch(FrameBatch.from_frames(frames, ts_ns=ts, ifindex=ifindex))


def test_both_directions_merge_into_one_flow_with_initiator_first() -> None:
    ft = FlowTable(capacity=64)
    a, b = "10.0.0.9", "10.0.0.1"  # initiator has the higher address: canonical order flips
    syn = frame(a, b, "tcp", 40000, 80, flags=0x02)
    synack = frame(b, a, "tcp", 80, 40000, flags=0x12)
    ack = frame(a, b, "tcp", 40000, 80, flags=0x10, payload=b"y" * 100)
    ft.update(batch([syn, synack], ts=[1 * S, 2 * S]))
    ft.update(batch([ack], ts=[3 * S]))
    recs = ft.drain_updates()
    assert len(recs) == 1
    r = recs[0]
    assert bytes(r["src_addr"]) == mapped(a) and bytes(r["dst_addr"]) == mapped(b)
    assert (r["src_port"], r["dst_port"], r["proto"], r["ip_version"]) == (40000, 80, 6, 4)
    assert (r["packets_fwd"], r["packets_rev"]) == (2, 1)
    assert r["bytes_fwd"] == len(syn) + len(ack) and r["bytes_rev"] == len(synack)
    assert (r["tcp_flags_fwd"], r["tcp_flags_rev"]) == (0x12, 0x12)
    assert (r["first_seen_ns"], r["last_seen_ns"]) == (1 * S, 3 * S)
    assert r["state"] == FlowState.ESTABLISHED
    assert len(ft.drain_updates()) == 0  # nothing changed since
    assert ft.stats().live == 1 and ft.stats().created == 1


def test_key_includes_vlan_ifindex_ports_and_version() -> None:
    ft = FlowTable(capacity=64)
    frames = [
        frame("10.0.0.1", "10.0.0.2", "udp", 1, 2),
        frame("10.0.0.1", "10.0.0.2", "udp", 1, 3),
        frame("10.0.0.1", "10.0.0.2", "udp", 1, 2, vlans=(7,)),
        frame("10.0.0.1", "10.0.0.2", "udp", 1, 2, vlans=(7, 8)),
        frame("10.0.0.1", "10.0.0.2", "tcp", 1, 2),
        frame("::ffff:10.0.0.1", "::ffff:10.0.0.2", "udp", 1, 2),  # v6 packet, mapped addrs
        frame("10.0.0.2", "10.0.0.1", "udp", 2, 1),  # reverse of the first
    ]
    ft.update(batch(frames))
    ft.update(batch(frames[:1], ifindex=2))
    recs = ft.drain_updates()
    assert len(recs) == 7
    first = recs[
        (recs["ifindex"] == 1)
        & (recs["dst_port"] == 2)
        & (recs["vlan"] == 0)
        & (recs["proto"] == 17)
        & (recs["ip_version"] == 4)
    ]
    assert len(first) == 1 and first[0]["packets_rev"] == 1
    assert sorted(recs["vlan_inner"].tolist()) == [0, 0, 0, 0, 0, 0, 8]


def test_counts_are_exact_over_many_flows_and_batches() -> None:
    rng = np.random.default_rng(1)
    ft = FlowTable(capacity=4096)
    expected: dict[tuple[int, int], int] = {}
    for step in range(10):
        ports = rng.integers(1, 500, size=300)
        frames = [frame("10.0.0.1", "10.0.0.2", "udp", int(p), 53) for p in ports]
        for p in ports:
            expected[(int(p), 53)] = expected.get((int(p), 53), 0) + 1
        ft.update(batch(frames, ts=step * S + 1))
    recs = ft.drain_updates()
    got = {(int(r["src_port"]), int(r["dst_port"])): int(r["packets_fwd"]) for r in recs}
    assert got == expected
    assert ft.stats().live == len(expected) == ft.stats().created


def test_tcp_state_closing_and_closed() -> None:
    ft = FlowTable(capacity=8, closed_linger=1.0)
    a, b = "10.0.0.1", "10.0.0.2"
    ft.update(batch([frame(a, b, "tcp", 5, 6, 0x02), frame(b, a, "tcp", 6, 5, 0x12)], ts=S))
    ft.update(batch([frame(a, b, "tcp", 5, 6, 0x11)], ts=2 * S))
    assert ft.drain_updates()[0]["state"] == FlowState.CLOSING
    ft.update(batch([frame(b, a, "tcp", 6, 5, 0x11)], ts=3 * S))
    assert ft.drain_updates()[0]["state"] == FlowState.CLOSED
    assert len(ft.expire(3 * S)) == 0  # lingers a little for the last ACK
    ended = ft.expire(4 * S)
    assert len(ended) == 1 and ended[0]["end_reason"] == EndReason.CLOSED
    ft.update(batch([frame(a, b, "tcp", 7, 6, 0x04)], ts=5 * S))
    assert ft.drain_updates()[0]["state"] == FlowState.CLOSED  # RST closes at once
    assert ft.stats().live == 1


def test_idle_and_active_timeouts() -> None:
    ft = FlowTable(capacity=16, idle_timeout=10, active_timeout=60)
    ft.update(batch([frame("10.0.0.1", "10.0.0.2", "udp", 1, 1)], ts=0 * S + 1))
    for t in range(0, 70, 5):  # a chatty flow: never idle, ends by active timeout
        ft.update(batch([frame("10.0.0.1", "10.0.0.2", "udp", 2, 2)], ts=t * S + 1))
    ended = ft.expire(9 * S)
    assert len(ended) == 0
    ended = ft.expire(11 * S)
    assert [(r["src_port"], r["end_reason"]) for r in ended] == [(1, EndReason.IDLE_TIMEOUT)]
    ended = ft.expire(61 * S)
    assert [(r["src_port"], r["end_reason"]) for r in ended] == [(2, EndReason.ACTIVE_TIMEOUT)]
    assert ended[0]["packets_fwd"] == 14
    s = ft.stats()
    assert (s.live, s.expired, s.created) == (0, 2, 2)
    # the same 5-tuple afterwards starts a fresh record
    ft.update(batch([frame("10.0.0.1", "10.0.0.2", "udp", 2, 2)], ts=62 * S))
    assert ft.drain_updates()[0]["packets_fwd"] == 1


def test_capacity_bound_evicts_oldest_idle_first_and_counts() -> None:
    ft = FlowTable(capacity=100, evict_fraction=0.1, idle_timeout=1e3, active_timeout=1e3)
    for i in range(100):  # flow i last seen at i seconds
        ft.update(batch([frame("10.0.0.1", "10.0.1.1", "udp", 1000 + i, 53)], ts=i * S + 1))
    assert ft.stats().live == 100
    # the 5 oldest get traffic again so they are no longer the idlest
    ft.update(
        batch([frame("10.0.0.1", "10.0.1.1", "udp", 1000 + i, 53) for i in range(5)], ts=200 * S)
    )
    ft.update(batch([frame("10.0.0.2", "10.0.1.1", "udp", 7, 53)], ts=201 * S))
    s = ft.stats()
    assert s.live <= 100 and s.evicted >= 1 and s.live == 101 - s.evicted
    ended = ft.expire(201 * S)
    evicted = sorted(int(p) for p in ended["src_port"])
    assert all(r == EndReason.EVICTED for r in ended["end_reason"])
    assert len(evicted) == s.evicted
    assert evicted == list(range(1005, 1005 + len(evicted)))  # oldest-idle first
    # every live flow is still findable after the churn
    ft.update(batch([frame("10.0.0.2", "10.0.1.1", "udp", 7, 53)], ts=202 * S))
    assert ft.stats().live == 101 - s.evicted


def test_eviction_with_every_flow_tied_spares_the_batch_own_flows() -> None:
    """One timestamp per batch makes ties at the eviction threshold the normal case."""
    ft = FlowTable(capacity=512, evict_fraction=1 / 8, idle_timeout=1e3, active_timeout=1e3)
    ft.update(batch([frame("10.0.0.1", "10.0.1.1", "udp", 1000 + i, 53) for i in range(512)],
                    ts=S))
    old = [frame("10.0.0.1", "10.0.1.1", "udp", 1000 + i, 53) for i in range(0, 512, 4)]
    new = [frame("10.0.0.9", "10.0.1.1", "udp", 2000 + i, 53) for i in range(20)]
    ft.update(batch(old + new, ts=2 * S))
    s = ft.stats()
    assert s.evicted == 64 and s.live == 512 + 20 - 64 and s.overflow == 0
    ended = ft.expire(2 * S)
    gone = {int(p) for p in ended["src_port"]}
    assert len(gone) == 64 and not gone & {1000 + i for i in range(0, 512, 4)}
    ft.update(batch(old + new, ts=3 * S))  # all of them still in the table: nothing new
    assert ft.stats().created == 512 + 20


def test_table_stays_exact_under_heavy_churn() -> None:
    """Create/expire many generations so tombstones and rehashes happen; lookups stay exact."""
    ft = FlowTable(capacity=256, idle_timeout=1)
    for gen in range(30):
        frames = [frame("10.0.0.1", "10.0.0.2", "udp", gen * 300 + i, 9) for i in range(200)]
        ft.update(batch(frames, ts=gen * 10 * S + 1))
        ft.update(batch(frames[:50], ts=gen * 10 * S + 2))
        recs = ft.drain_updates()
        assert len(recs) == 200
        assert sorted(recs["packets_fwd"].tolist()) == [1] * 150 + [2] * 50
        assert len(ft.expire(gen * 10 * S + 5 * S)) == 200
        assert ft.stats().live == 0
    assert ft.stats().created == 30 * 200 == ft.stats().expired


def test_overflow_when_one_batch_exceeds_capacity() -> None:
    ft = FlowTable(capacity=10)
    ft.update(batch([frame("10.0.0.1", "10.0.0.2", "udp", i, 9) for i in range(25)], ts=1))
    s = ft.stats()
    assert s.live == 10 and s.overflow == 15


def test_flush_and_malformed_frames_ignored() -> None:
    ft = FlowTable(capacity=8)
    parsed = batch([frame("::1", "::2", "icmp", 128, 0), b"\x00" * 20])
    assert parsed.flow_mask.tolist() == [True, False]
    ft.update(parsed)
    out = ft.flush()
    assert len(out) == 1 and out[0]["end_reason"] == EndReason.FLUSHED
    # ICMP flows carry FLOE_ICMP_FLOW_PORT on both sides (the rule shared with the XDP program)
    assert (out[0]["proto"], out[0]["src_port"], out[0]["dst_port"], out[0]["ip_version"]) == (
        58, FLOE_ICMP_FLOW_PORT, FLOE_ICMP_FLOW_PORT, 6)
    assert out[0]["packets_fwd"] + out[0]["packets_rev"] == 1
    assert ft.stats().live == 0


def test_memory_per_flow_bound() -> None:
    ft = FlowTable(capacity=1 << 16)
    assert ft.nbytes() / ft.capacity <= 200


class _CollidingTable(FlowTable):
    """Every key hashes alike: the full-key checks alone must keep flows apart."""

    def _hash(self, keys):  # type: ignore[no-untyped-def]
        return np.zeros(keys[0].shape[0], np.uint64) + np.uint64(12345)


def test_exact_even_when_every_hash_collides() -> None:
    ft = _CollidingTable(capacity=64, idle_timeout=5)
    frames = [frame("10.0.0.1", "10.0.0.2", "udp", p, 9) for p in range(20)]
    ft.update(batch(frames * 3, ts=S))
    ft.update(batch([frame("10.0.0.2", "10.0.0.1", "udp", 9, 3)], ts=2 * S))
    recs = ft.drain_updates()
    got = {int(r["src_port"]): (int(r["packets_fwd"]), int(r["packets_rev"])) for r in recs}
    assert got == {p: (3, 1 if p == 3 else 0) for p in range(20)}
    assert len(ft.expire(10 * S)) == 20 and ft.stats().live == 0


def test_drain_updates_limit_keeps_the_rest_pending() -> None:
    ft = FlowTable(capacity=256)
    ft.update(batch([frame("10.0.0.1", "10.0.0.2", "udp", p, 9) for p in range(100)], ts=S))
    first = ft.drain_updates(limit=30)
    assert len(first) == 30
    again = 0 if 0 in first["src_port"].tolist() else int(first["src_port"][0])
    ft.update(batch([frame("10.0.0.1", "10.0.0.2", "udp", again, 9)], ts=2 * S))
    rest = ft.drain_updates(limit=1000)
    assert len(rest) == 71  # 70 never drained + the one drained before and changed since
    assert set(first["src_port"].tolist()) | set(rest["src_port"].tolist()) == set(range(100))
    assert rest[rest["src_port"] == again][0]["packets_fwd"] == 2
    assert len(ft.drain_updates()) == 0


def test_expire_limit_bounds_evicted_records_too_and_keeps_the_rest() -> None:
    ft = FlowTable(capacity=64, evict_fraction=1 / 8, idle_timeout=1e3, active_timeout=1e3)
    ft.update(batch([frame("10.0.0.1", "10.0.1.1", "udp", 1000 + i, 53) for i in range(64)],
                    ts=S))
    for round_ in range(4):  # 4 x 8 new flows into a full table: 4 evictions of 8
        new = [frame("10.0.0.2", "10.0.1.1", "udp", 2000 + 8 * round_ + i, 53) for i in range(8)]
        ft.update(batch(new, ts=(2 + round_) * S))
    assert ft.stats().evicted == 32
    first = ft.expire(10 * S, limit=20)
    second = ft.expire(10 * S, limit=20)
    assert len(first) == 20 and len(second) == 12 and len(ft.expire(10 * S, limit=20)) == 0
    ports = [int(p) for p in np.concatenate([first, second])["src_port"]]
    assert len(set(ports)) == 32 and all(1000 <= p < 1064 for p in ports)


def test_expire_limit_applies_after_the_end_condition() -> None:
    """Flows idle past the closed-linger time but not the idle timeout must not use up the
    limit: flows that really ended, at higher ids, still end."""
    ft = FlowTable(capacity=1024, idle_timeout=30, active_timeout=1e3, closed_linger=2)
    quiet = [frame("10.0.0.1", "10.0.1.1", "udp", 1000 + i, 53) for i in range(300)]
    ft.update(batch(quiet, ts=90 * S))  # idle 10 s at t=100: not ended
    old = [frame("10.0.0.2", "10.0.1.1", "udp", 3000 + i, 53) for i in range(200)]
    ft.update(batch(old, ts=50 * S))  # idle 50 s: ended
    ended = ft.expire(100 * S, limit=150)
    assert len(ended) == 150
    assert all(r["end_reason"] == EndReason.IDLE_TIMEOUT for r in ended)
    assert all(int(p) >= 3000 for p in ended["src_port"])


def test_eviction_backlog_is_bounded_and_counted(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import dataplane.flowtable as flowtable

    def evicted_in_order() -> tuple[list[int], FlowTable]:
        ft = FlowTable(capacity=16, evict_fraction=1 / 4, idle_timeout=1e3, active_timeout=1e3)
        for round_ in range(20):  # nobody calls expire(): evicted records pile up
            new = [frame("10.0.0.3", "10.0.1.1", "udp", 100 * round_ + i, 53) for i in range(4)]
            ft.update(batch(new, ts=(round_ + 1) * S))
        waiting = ft.expire(100 * S, limit=None)
        return [int(r["src_port"]) for r in waiting if r["end_reason"] == EndReason.EVICTED], ft

    everything, _ = evicted_in_order()  # the default backlog holds them all
    monkeypatch.setattr(flowtable, "ENDED_BACKLOG", 20)
    kept, ft = evicted_in_order()
    assert len(everything) == ft.stats().evicted > 20
    assert kept == everything[-20:]  # the oldest were dropped, the rest kept in order
    assert ft.ended_dropped == len(everything) - 20


def test_a_mass_timeout_is_scanned_once_and_handed_out_in_parts(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ft = FlowTable(capacity=256, idle_timeout=10, active_timeout=1e3)
    ft.update(batch([frame("10.0.0.1", "10.0.1.1", "udp", 1000 + i, 53) for i in range(200)],
                    ts=S))
    ft.drain_updates()
    full_scans = 0
    ending = ft._ending

    def counted(now, last, first, state):  # type: ignore[no-untyped-def]
        nonlocal full_scans
        full_scans += last.shape[0] == ft.last.shape[0]
        return ending(now, last, first, state)

    monkeypatch.setattr(ft, "_ending", counted)
    now = 100 * S
    first = ft.expire(now, limit=64)
    # a frame arrives between two parts for a flow the scan found due: it is no longer due
    ft.update(batch([frame("10.0.0.1", "10.0.1.1", "udp", 1199, 53)], ts=now))
    rest = [ft.expire(now, limit=64) for _ in range(4)]
    ports = [int(p) for part in (first, *rest) for p in part["src_port"]]
    assert full_scans == 1
    assert len(first) == 64 and sorted(ports) == [1000 + i for i in range(199)]
    assert ft.stats().live == 1  # the flow that had a frame
