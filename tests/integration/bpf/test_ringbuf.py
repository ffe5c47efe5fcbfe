"""The ring buffer on a real veth: pass-through records (every frame still reaches the host),
dropped-frame records with their rule in every XDP mode, sampling weights that keep the
totals exact, the drop rate cap, a full ring counted as loss, and the snap length."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np
import pytest

from dataplane.bpf import InterfaceCounters, Rule, RuleSet, XdpProgram
from dataplane.bpf.layout import Verdict
from dataplane.packets import FrameBatch
from dataplane.parse import parse_batch
from dataplane.sources.ringbuf import RingSource
from dataplane.trafficgen import AfPacketSender, FrameSpec, build_frame, malformed_frame
from tests.support.hostcount import HostCounter
from tests.support.topology import VethNs, wait_until

pytestmark = pytest.mark.root

V4_TCP = FrameSpec(src="10.9.0.1", dst="10.9.0.2", proto="tcp", sport=1000, dport=80)
V6_UDP = FrameSpec(src="2001:db8::1", dst="2001:db8::2", proto="udp", sport=53, dport=5353)
VLAN_UDP = FrameSpec(src="10.9.1.1", dst="10.9.1.2", proto="udp", sport=7, dport=9, vlans=(7,))
ICMP = FrameSpec(src="10.9.2.1", dst="10.9.2.2", proto="icmp")
KNOWN = [(build_frame(V4_TCP), 30), (build_frame(V6_UDP), 20), (build_frame(VLAN_UDP), 10),
         (build_frame(ICMP), 5), (malformed_frame("ipv4_bad_ihl"), 3),
         (malformed_frame("l4_truncated"), 2)]


def _frames(plan: list[tuple[bytes, int]] = KNOWN) -> list[bytes]:
    return [frame for frame, count in plan for _ in range(count)]


def _send(veth: VethNs, frames: list[bytes]) -> None:
    with AfPacketSender(veth.pair.peer, veth.namespace) as sender:
        assert sender.send(frames) == len(frames)


def _read_all(source: RingSource, expected: int, timeout: float = 5.0) -> FrameBatch:
    """Every record until `expected` arrived (or the time is up), as one batch."""
    batches: list[FrameBatch] = []
    got = 0

    def more() -> bool:
        nonlocal got
        batch = source.read_batch(4096, 0.05)
        if batch is not None and len(batch):
            batches.append(batch)
            got += len(batch)
        return got >= expected

    wait_until(more, timeout=timeout, step=0.0)
    return FrameBatch.concat(batches)


def _send_and_read_all(veth: VethNs, prog: XdpProgram, frames: list[bytes],
                       counted: Callable[[InterfaceCounters], int]
                       ) -> tuple[InterfaceCounters, FrameBatch, dict[str, int]]:
    """Send `frames`, wait until the kernel counted them all (`counted` of its counters ==
    len(frames)), read every record written: (the counters, the records, the ring state)."""
    source = RingSource(prog)
    try:
        _send(veth, frames)
        assert wait_until(lambda: counted(prog.counters()) == len(frames))
        c = prog.counters()
        batch = _read_all(source, c.ring_passed + c.ring_dropped)
    finally:
        source.close()
    return c, batch, prog.ring_state()


def test_passthrough_records_every_frame_and_the_host_gets_every_frame(
        veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    prog = make_xdp(veth_ns.pair.host, mode="passthrough")
    source = RingSource(prog)
    frames = _frames()
    try:
        with HostCounter(veth_ns.pair.host) as host:
            _send(veth_ns, frames)
            assert host.wait_for(len(frames)) == len(frames)  # XDP_PASS: the stack has them
        batch = _read_all(source, len(frames))
    finally:
        source.close()
    counters = prog.counters()
    assert counters.packets == counters.passed == counters.ring_passed == len(frames)
    assert counters.ring_full == counters.ring_dropped == 0
    assert len(batch) == len(frames)
    assert sorted(bytes(batch.frame(i)) for i in range(len(batch))) == sorted(frames)
    assert batch.wire_lengths.tolist() == [len(f) for f in frames]  # in order: one sender
    assert set(batch.verdicts().tolist()) == {Verdict.FORWARDED}
    assert set(batch.rule_ids().tolist()) == {0}
    assert batch.weights().tolist() == [1] * len(frames)
    assert batch.weights_bytes().tolist() == [len(f) for f in frames]
    parsed = parse_batch(batch)
    assert int(np.count_nonzero(parsed.malformed)) == 5
    assert int(np.count_nonzero(parsed.flow_mask)) == 65


@pytest.mark.parametrize("mode", ["tap", "inline", "passthrough"])
def test_dropped_frames_are_recorded_with_their_rule(
        veth_ns: VethNs, make_xdp: Callable[..., XdpProgram], mode: str) -> None:
    """A CIDR deny (the fast path), a port deny (the general path) and the default action."""
    prog = make_xdp(veth_ns.pair.host, mode=mode)
    prog.rules.apply(RuleSet([Rule(id=7, action="deny", src="10.9.0.0/24"),
                              Rule(id=9, action="deny", port=5353, proto="udp"),
                              Rule(id=11, action="allow", src="10.9.1.0/24")]))
    source = RingSource(prog)
    try:
        _send(veth_ns, _frames(KNOWN[:3]))  # 30 denied by 7, 20 by 9, 10 allowed by 11
        first = _read_all(source, 50 if mode != "passthrough" else 60)
        prog.set_config(default_action="deny")
        _send(veth_ns, _frames([KNOWN[3]]))  # 5 ICMP: no rule, default deny
        second = _read_all(source, 5)
    finally:
        source.close()
    assert prog.counters().dropped_rule == 50 and prog.counters().dropped_default == 5
    batch = FrameBatch.concat([first, second])
    verdict, rule = batch.verdicts(), batch.rule_ids()
    dropped = verdict == Verdict.DROPPED
    assert sorted(zip(rule[dropped].tolist(), batch.wire_lengths[dropped].tolist(),
                      strict=True)) == sorted(
        [(7, len(KNOWN[0][0]))] * 30 + [(9, len(KNOWN[1][0]))] * 20
        + [(0, len(KNOWN[3][0]))] * 5)
    assert batch.weights()[dropped].tolist() == [1] * 55
    forwarded = verdict == Verdict.FORWARDED
    if mode == "passthrough":  # passed frames too, with the allow rule that passed them
        assert rule[forwarded].tolist() == [11] * 10
    else:
        assert not forwarded.any()
    assert prog.counters().ring_dropped == 55


def test_sampling_weights_keep_the_totals_exact(
        veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    """1 in 4 passed frames recorded, 1 in 3 dropped ones: each record stands for the frames
    sampled out before it, so the weights (plus what waits for the next record) sum to the
    kernel's counts, frames and bytes."""
    prog = make_xdp(veth_ns.pair.host, mode="passthrough")
    prog.set_config(sample_n=4, drop_sample_n=3, drop_rate_cap=0)
    prog.rules.apply(RuleSet([Rule(id=5, action="deny", src="10.9.1.0/24")]))
    prog.reset_ring_state()
    plan = [(build_frame(FrameSpec(src="10.9.0.1", dst="10.9.0.2", proto="udp", sport=i,
                                   dport=53, payload=i % 40)), 1) for i in range(1, 102)]
    plan += [(build_frame(VLAN_UDP), 50)]  # dropped by rule 5
    frames = _frames(plan)
    source = RingSource(prog)
    try:
        _send(veth_ns, frames)
        assert wait_until(lambda: prog.counters().packets == len(frames))
        c = prog.counters()
        batch = _read_all(source, c.ring_passed + c.ring_dropped)
    finally:
        source.close()
    state = prog.ring_state()
    assert (c.passed, c.dropped_rule) == (101, 50)
    fwd = batch.verdicts() == Verdict.FORWARDED
    drop = ~fwd
    assert int(fwd.sum()) == c.ring_passed and int(drop.sum()) == c.ring_dropped
    assert 101 // 4 - 2 <= c.ring_passed <= 101 // 4 + 2  # one carry per CPU at most
    assert int(batch.weights()[fwd].sum()) + state["pass_weight"] == 101
    assert int(batch.weights_bytes()[fwd].sum()) + state["pass_weight_bytes"] == sum(
        len(f) for f in frames[:101])
    assert int(batch.weights()[drop].sum()) + state["drop_weight"] == 50
    rode = source.sampled_out  # Σ (weight - 1) of the records read, by verdict
    assert rode[Verdict.FORWARDED] + state["pass_weight"] == 101 - c.ring_passed
    assert rode[Verdict.DROPPED] + state["drop_weight"] == 50 - c.ring_dropped


def test_the_drop_rate_cap_records_few_and_weighs_the_rest(
        veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    prog.set_config(default_action="deny", drop_sample_n=1, drop_rate_cap=10)  # 1 per 100 ms
    prog.reset_ring_state()
    frames = [build_frame(V4_TCP)] * 2000
    c, batch, state = _send_and_read_all(veth_ns, prog, frames, lambda c: c.dropped_default)
    assert 1 <= c.ring_dropped <= 40  # a handful of 100 ms windows, not 2000
    assert len(batch) == c.ring_dropped
    assert int(batch.weights().sum()) + state["drop_weight"] == len(frames)
    assert set(batch.rule_ids().tolist()) == {0}


def test_a_full_ring_is_counted_and_the_host_still_gets_every_frame(
        veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    """A 16 KiB ring nobody reads: what fits is recorded, the rest counted in ring_full."""
    prog = make_xdp(veth_ns.pair.host, mode="passthrough", ring_bytes=16384)
    assert prog.ring_bytes() == 16384
    frames = [build_frame(V4_TCP)] * 600
    with HostCounter(veth_ns.pair.host) as host:
        _send(veth_ns, frames)
        assert host.wait_for(len(frames)) == len(frames)
    c = prog.counters()
    assert c.passed == len(frames)
    record = 8 + 32 + 128  # ring header + floe_ring_rec + snap class
    assert c.ring_passed == 16384 // record
    assert c.ring_passed + c.ring_full == len(frames)
    source = RingSource(prog)
    try:
        batch = _read_all(source, c.ring_passed)
        assert len(batch) == c.ring_passed
        _send(veth_ns, frames[:10])  # room again once read
        assert len(_read_all(source, 10)) == 10
    finally:
        source.close()
    assert prog.counters().ring_full == c.ring_full


@pytest.mark.parametrize(("snaplen", "cls"), [(64, 64), (100, 128), (256, 256)])
def test_the_snap_length(veth_ns: VethNs, make_xdp: Callable[..., XdpProgram],
                         snaplen: int, cls: int) -> None:
    prog = make_xdp(veth_ns.pair.host, mode="passthrough")
    prog.set_config(snaplen=snaplen)
    big = build_frame(FrameSpec(src="10.9.0.1", dst="10.9.0.2", proto="udp", sport=1,
                                dport=2, payload=400))
    small = build_frame(ICMP)
    source = RingSource(prog)
    try:
        _send(veth_ns, [big, small])
        batch = _read_all(source, 2)
    finally:
        source.close()
    assert batch.stride == cls
    assert batch.lengths.tolist() == [min(snaplen, len(big)), len(small)]
    assert batch.wire_lengths.tolist() == [len(big), len(small)]
    assert batch.frame(0) == big[:snaplen] and batch.frame(1) == small
    assert parse_batch(batch).sport.tolist() == [1, 0]


def test_a_full_ring_costs_one_try_a_window_and_the_drops_ride(
        veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    """Dropped frames while nobody reads a full ring: one failed record a window per CPU, not
    one a frame (a filtered flood stays cheap); the rest ride on the next record's weight."""
    prog = make_xdp(veth_ns.pair.host, mode="inline", ring_bytes=16384)
    prog.set_config(default_action="deny", drop_sample_n=1, drop_rate_cap=1000)
    prog.reset_ring_state()
    frames = [build_frame(V4_TCP)] * 3000
    _send(veth_ns, frames)
    assert wait_until(lambda: prog.counters().dropped_default == len(frames))
    c = prog.counters()
    state = prog.ring_state()
    assert c.ring_dropped == 16384 // (8 + 32 + 128)
    assert 1 <= c.ring_full <= 20
    source = RingSource(prog)
    try:
        batch = _read_all(source, c.ring_dropped)
    finally:
        source.close()
    assert int(batch.weights().sum()) + state["drop_weight"] + c.ring_full == len(frames)


def _send_on_cpu0(veth: VethNs, frames: list[bytes]) -> None:
    """Send from one CPU only (the lowest this process may use): the frames are then processed
    there (veth receives on the sender's CPU), so one CPU's sampling state sees them all."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        _send(veth, frames)
    finally:
        os.sched_setaffinity(0, before)


@pytest.mark.parametrize("reset", [False, True], ids=["carried", "reset"])
def test_drops_over_a_spent_budget_ride_to_the_next_window_or_go_with_a_reset(
        veth_ns: VethNs, make_xdp: Callable[..., XdpProgram], reset: bool) -> None:
    """A burst spends the window's one record; the rest write nothing and ride. A single drop
    once the window is over (a trickle: the clock is looked at again within a jiffy) is
    recorded and carries the whole burst, exactly — unless a new reader reset the state in
    between: then it stands for itself and nothing from before is carried."""
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    prog.set_config(default_action="deny", drop_sample_n=1, drop_rate_cap=10)  # 1 per 100 ms
    prog.reset_ring_state()
    burst = [build_frame(V4_TCP)] * 300
    source = RingSource(prog)
    try:
        _send_on_cpu0(veth_ns, burst)
        assert wait_until(lambda: prog.counters().dropped_default == len(burst))
        first = _read_all(source, prog.counters().ring_dropped)
        riding = prog.ring_state()["drop_weight"]
        assert int(first.weights().sum()) + riding == len(burst)
        assert riding > 0  # the burst outran its window's budget
        if reset:
            prog.reset_ring_state()
            assert prog.ring_state()["drop_weight"] == 0
        time.sleep(0.25)  # past the window
        records = prog.counters().ring_dropped
        _send_on_cpu0(veth_ns, burst[:1])
        assert wait_until(lambda: prog.counters().ring_dropped == records + 1)
        last = _read_all(source, 1)
    finally:
        source.close()
    assert last.weights().tolist() == [1 if reset else riding + 1]
    assert last.weights_bytes().tolist() == [len(burst[0]) * last.weights()[0]]
    assert prog.ring_state()["drop_weight"] == 0


def test_records_off_carry_nothing_and_turned_on_start_afresh(
        veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    """With drop records off nothing rides (the drops are not sampled out: nobody asked for
    them); turned on, the first record stands for its own frame, not for every drop before."""
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    prog.set_config(default_action="deny", drop_sample_n=0)
    prog.reset_ring_state()
    frames = [build_frame(V4_TCP)] * 200
    _send(veth_ns, frames)
    assert wait_until(lambda: prog.counters().dropped_default == len(frames))
    assert prog.counters().ring_dropped == 0
    assert prog.ring_state()["drop_weight"] == 0
    prog.set_config(drop_sample_n=1, drop_rate_cap=0)
    source = RingSource(prog)
    try:
        _send(veth_ns, frames[:3])
        batch = _read_all(source, 3)
    finally:
        source.close()
    assert batch.weights().tolist() == [1, 1, 1]
    assert prog.ring_state()["drop_weight"] == 0


def test_every_kind_of_drop_is_weighed_in_frames_and_bytes(
        veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    """1 in 3 drops recorded, of every kind at once — the IPv4 and IPv6 fast paths, a rule on
    the general path (VLAN-tagged), malformed frames and the default action: the weights and
    what still rides add up to the kernel's drops, frames and bytes."""
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    prog.set_config(default_action="deny", malformed_action="deny", drop_sample_n=3,
                    drop_rate_cap=0)
    prog.rules.apply(RuleSet([Rule(id=5, action="deny", src="10.9.1.0/24"),
                              Rule(id=6, action="deny", src="10.9.0.0/24"),
                              Rule(id=7, action="deny", src="2001:db8::/32")]))
    prog.reset_ring_state()
    plan = [(build_frame(V4_TCP), 40), (build_frame(V6_UDP), 35), (build_frame(VLAN_UDP), 30),
            (malformed_frame("ipv4_bad_ihl"), 7), (build_frame(ICMP), 11)]  # ICMP: default
    frames = _frames(plan)
    c, batch, state = _send_and_read_all(veth_ns, prog, frames, lambda c: c.dropped)
    assert (c.dropped_rule, c.dropped_malformed, c.dropped_default) == (105, 7, 11)
    assert c.dropped_bytes == sum(len(f) for f in frames)
    assert len(batch) == c.ring_dropped > 0
    assert int(batch.weights().sum()) + state["drop_weight"] == len(frames)
    assert int(batch.weights_bytes().sum()) + state["drop_weight_bytes"] == c.dropped_bytes


def test_lowering_the_drop_sampling_takes_effect_at_once(
        veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    """1 in 1000, then 1 in 2: the countdown left from 1 in 1000 does not hold records back."""
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    prog.set_config(default_action="deny", drop_sample_n=1000, drop_rate_cap=0)
    prog.reset_ring_state()
    frame = build_frame(V4_TCP)
    _send_on_cpu0(veth_ns, [frame] * 5)
    assert wait_until(lambda: prog.counters().dropped_default == 5)
    assert prog.counters().ring_dropped == 1  # the first; 999 to go
    prog.set_config(drop_sample_n=2)
    _send_on_cpu0(veth_ns, [frame] * 4)
    assert wait_until(lambda: prog.counters().dropped_default == 9)
    assert prog.counters().ring_dropped == 3
