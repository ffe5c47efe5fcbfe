"""Rules land in the maps as a diff: drops and per-rule hits are exact; removal restores pass."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dataplane.bpf import AttachError, MapError, Rule, RuleError, RuleSet, XdpProgram, loader
from dataplane.trafficgen import FrameSpec, build_frame
from tests.integration.bpf.ruleruns import fast_counters, run_rules, send_counted
from tests.support.topology import VethNs

pytestmark = pytest.mark.root


def test_deny_cidr_then_remove(veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    bad = build_frame(FrameSpec(src="192.0.2.77", dst="10.2.0.1", proto="udp"))
    good = build_frame(FrameSpec(src="198.51.100.1", dst="10.2.0.1", proto="udp"))
    bad6 = build_frame(FrameSpec(src="fd00::5", dst="2001:db8:1::9", proto="tcp"))

    result = prog.rules.apply(RuleSet([
        Rule(10, "deny", src="192.0.2.0/24"),
        Rule(11, "deny", dst="2001:db8:1::/48"),
    ]))
    assert result == {"added": 2, "changed": 0, "removed": 0}
    send_counted(veth_ns, prog, [bad] * 17 + [good] * 5 + [bad6] * 4)
    c = prog.counters()
    assert c.dropped_rule == 21 and c.passed == 5
    hits = prog.rule_hits()
    assert hits[10].packets == 17 and hits[10].bytes == 17 * len(bad)
    assert hits[11].packets == 4 and hits[11].bytes == 4 * len(bad6)

    # re-applying the same set changes nothing and keeps the hit counts
    assert prog.rules.apply(RuleSet([Rule(10, "deny", src="192.0.2.0/24"),
                                     Rule(11, "deny", dst="2001:db8:1::/48")])) == {
        "added": 0, "changed": 0, "removed": 0}
    assert prog.rule_hits()[10].packets == 17

    assert prog.rules.apply(RuleSet([])) == {"added": 0, "changed": 0, "removed": 2}
    assert prog.rule_hits() == {} and prog.rules.count() == 0
    send_counted(veth_ns, prog, [bad] * 3 + [bad6] * 2)
    c = prog.counters()
    assert c.dropped_rule == 21 and c.passed == 10


def test_port_proto_and_allow_over_default_deny(veth_ns: VethNs,
                                                make_xdp: Callable[..., XdpProgram]) -> None:
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    prog.rules.apply(RuleSet([
        Rule(1, "deny", proto="tcp", port=23),
        Rule(2, "deny", proto="icmp"),
        Rule(3, "allow", proto="udp", port=53),
        Rule(4, "deny", port=5000, direction="src"),  # tcp and udp
    ]))
    telnet = build_frame(FrameSpec(proto="tcp", dport=23))
    ping = build_frame(FrameSpec(proto="icmp"))
    dns = build_frame(FrameSpec(proto="udp", dport=53))
    web = build_frame(FrameSpec(proto="tcp", dport=443))
    from_5000 = build_frame(FrameSpec(proto="udp", sport=5000, dport=9))
    send_counted(veth_ns, prog, [telnet] * 3 + [ping] * 2 + [dns] * 4 + [web] * 5 + [from_5000] * 6)
    hits = prog.rule_hits()
    assert [hits[i].packets for i in (1, 2, 3, 4)] == [3, 2, 4, 6]
    c = prog.counters()
    assert c.dropped_rule == 11 and c.passed == 9

    # default deny: only the allow rule's traffic gets through
    prog.set_config(default_action="deny")
    send_counted(veth_ns, prog, [dns] * 2 + [web] * 3)
    c = prog.counters()
    assert c.dropped_default == 3 and c.passed == 11
    assert prog.rule_hits()[3].packets == 6

    # changing a rule's action in place is a "changed" entry and takes effect immediately
    assert prog.rules.apply(RuleSet([Rule(3, "deny", proto="udp", port=53)]))["changed"] == 1
    send_counted(veth_ns, prog, [dns])
    assert prog.counters().dropped_rule == 12


def test_tap_mode_without_socket_passes_and_counts(veth_ns: VethNs,
                                                   make_xdp: Callable[..., XdpProgram]) -> None:
    prog = make_xdp(veth_ns.pair.host, mode="tap")
    assert prog.config().mode == 1
    frame = build_frame(FrameSpec(proto="udp"))
    send_counted(veth_ns, prog, [frame] * 8)
    c = prog.counters()
    assert c.redirect_no_socket == 8 and c.passed == 8 and c.redirected == 0
    prog.set_config(sample_n=4)
    send_counted(veth_ns, prog, [frame] * 8)
    c = prog.counters()
    # 1-in-4 is kept per CPU (per-CPU counter): of 8 frames at most 3 are not sampled out
    assert c.sampled_out + (c.redirect_no_socket - 8) == 8 and c.sampled_out >= 5
    assert c.passed == 16
    assert prog.read_flows().size == 0  # no flow tracking in tap mode


def test_bad_config_and_rules_leave_state_untouched(veth_ns: VethNs,
                                                    make_xdp: Callable[..., XdpProgram]) -> None:
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    prog.rules.apply(RuleSet([Rule(1, "deny", proto="udp")]))
    before = bytes(prog.config())
    with pytest.raises(MapError):
        prog.set_config(default_action="drop")  # type: ignore[arg-type]
    with pytest.raises(MapError):
        prog.set_config(sample_n=-1)
    with pytest.raises(AttachError):
        prog.set_config(mode="mirror")  # type: ignore[arg-type]
    assert bytes(prog.config()) == before
    with pytest.raises(RuleError):  # one bad rule: nothing of the set is written
        prog.rules.apply(RuleSet([Rule(2, "deny", proto="tcp"), Rule(3, "deny", src="nope")]))
    assert prog.rules.slots() == {1: 0}
    with pytest.raises(MapError):
        prog.map("floe_nothing")


def test_truncated_frame_cannot_slip_past_a_deny(veth_ns: VethNs,
                                                 make_xdp: Callable[..., XdpProgram]) -> None:
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    prog.rules.apply(RuleSet([Rule(5, "deny", src="192.0.2.0/24"),
                              Rule(6, "deny", src="2001:db8:6::/48")]))
    v4 = build_frame(FrameSpec(src="192.0.2.5", dst="10.0.0.1", proto="tcp"))
    v4_cut = v4[:14] + bytes([0x45, 0]) + (20 + 8).to_bytes(2, "big") + v4[18:14 + 20 + 8]
    v6 = build_frame(FrameSpec(src="2001:db8:6::1", dst="fd00::1", proto="udp",
                               ipv6_ext=(60,)))
    v6_cut = v6[:14 + 4] + (4).to_bytes(2, "big") + v6[20:14 + 40 + 4]  # ext header cut short
    send_counted(veth_ns, prog, [v4_cut] * 3 + [v6_cut] * 2)
    c = prog.counters()
    assert c.mal_l4_truncated == 3 and c.mal_ipv6_ext_truncated == 2
    assert c.dropped_rule == 5 and c.passed == 0
    assert prog.rule_hits()[5].packets == 3 and prog.rule_hits()[6].packets == 2


def test_nested_ipv4_prefixes_longest_match_wins(veth_ns: VethNs,
                                                 make_xdp: Callable[..., XdpProgram]) -> None:
    """The IPv4 CIDR index (levels 1-3) credits the longest prefix, as the trie did."""
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    prog.rules.apply(RuleSet([
        Rule(1, "deny", src="10.0.0.0/8"),
        Rule(2, "allow", src="10.1.0.0/16"),
        Rule(3, "deny", src="10.1.2.0/24"),
        Rule(4, "allow", src="10.1.2.128/25"),
        Rule(5, "deny", src="10.1.2.200/32"),
        Rule(6, "deny", dst="203.0.113.0/28"),
    ]))
    sources = {"10.9.9.9": 1, "10.1.9.9": 2, "10.1.2.1": 3, "10.1.2.129": 4, "10.1.2.200": 5}
    frames = []
    for n, source in enumerate(sources, start=1):
        frames += [build_frame(FrameSpec(src=source, dst="198.51.100.1", proto="udp"))] * n
    frames += [build_frame(FrameSpec(src="198.51.100.9", dst="203.0.113.14", proto="tcp"))] * 7
    frames += [build_frame(FrameSpec(src="198.51.100.9", dst="203.0.113.16", proto="tcp"))] * 2
    send_counted(veth_ns, prog, frames)
    hits = prog.rule_hits()
    assert {rule: hits[rule].packets for rule in range(1, 7)} == {1: 1, 2: 2, 3: 3, 4: 4, 5: 5,
                                                                  6: 7}
    c = prog.counters()
    assert c.dropped_rule == 1 + 3 + 5 + 7 and c.passed == 2 + 4 + 2


def test_cidr_index_overflow_uses_the_trie(veth_ns: VethNs,
                                           make_xdp: Callable[..., XdpProgram]) -> None:
    """More /24s with host rules than level-3 blocks: the overflow is still matched exactly."""
    from dataplane.bpf.cidr_index import L3_BLOCKS

    prog = make_xdp(veth_ns.pair.host, mode="inline")
    count = L3_BLOCKS + 4
    rules = [Rule(i + 1, "deny", src=f"10.{(i >> 8) & 255}.{i & 255}.7/32") for i in range(count)]
    prog.rules.apply(RuleSet(rules))
    first = build_frame(FrameSpec(src="10.0.0.7", dst="198.51.100.1", proto="udp"))
    last = build_frame(FrameSpec(src=f"10.{((count - 1) >> 8) & 255}.{(count - 1) & 255}.7",
                                 dst="198.51.100.1", proto="udp"))
    neighbour = build_frame(FrameSpec(src="10.0.0.8", dst="198.51.100.1", proto="udp"))
    send_counted(veth_ns, prog, [first] * 3 + [last] * 4 + [neighbour] * 2)
    hits = prog.rule_hits()
    assert hits[1].packets == 3 and hits[count].packets == 4
    assert prog.counters().dropped_rule == 7 and prog.counters().passed == 2


def test_reattach_rebuilds_a_missing_cidr_index(veth_ns: VethNs,
                                                make_xdp: Callable[..., XdpProgram]) -> None:
    """Pins from before the index existed (tries only): attaching rebuilds it from the tries."""
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    prog.rules.apply(RuleSet([Rule(3, "deny", src="192.0.2.0/24")]))
    level1 = prog.map("floe_src_v4_l1")
    assert level1.read_words().any()
    level1.update((0).to_bytes(4, "little"), bytes(level1.value_size))  # as old pins left it
    bad = build_frame(FrameSpec(src="192.0.2.1", dst="198.51.100.1", proto="udp"))
    send_counted(veth_ns, prog, [bad])
    assert prog.counters().dropped_rule == 0  # the index is what the kernel reads
    again = XdpProgram.attach(veth_ns.pair.host, mode="inline")
    try:
        send_counted(veth_ns, again, [bad] * 2)
        assert again.counters().dropped_rule == 2 and again.rule_hits()[3].packets == 2
    finally:
        again.close()


def test_flood_fast_path_agrees_with_the_general_path(
        veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    """Plain IPv4 TCP/UDP drops take floe_xdp's fast path only while CIDR rules alone are in
    use; with another rule kind present every frame takes the general path. Both must count
    and credit exactly the same."""
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    prog.set_config(default_action="deny")
    cidr = [Rule(1, "deny", src="192.0.2.0/24"), Rule(2, "allow", src="192.0.2.128/25"),
            Rule(3, "deny", dst="198.51.100.0/24"), Rule(4, "allow", dst="203.0.113.0/24")]
    unrelated = Rule(5, "allow", proto="sctp")  # matches none of the frames below
    frames = [
        build_frame(FrameSpec(src="192.0.2.9", dst="10.0.0.1", proto="udp")),  # 1: deny
        build_frame(FrameSpec(src="192.0.2.200", dst="10.0.0.1", proto="tcp")),  # 2: allow
        build_frame(FrameSpec(src="192.0.2.200", dst="198.51.100.3", proto="udp")),  # 3 wins
        build_frame(FrameSpec(src="172.16.0.1", dst="203.0.113.5", proto="tcp")),  # 4: allow
        build_frame(FrameSpec(src="172.16.0.1", dst="10.0.0.1", proto="udp")),  # default deny
        build_frame(FrameSpec(src="192.0.2.9", dst="10.0.0.1", proto="icmp")),  # not plain
        build_frame(FrameSpec(src="192.0.2.9", dst="10.0.0.1", proto="udp", vlans=(7,))),
        build_frame(FrameSpec(src="192.0.2.9", dst="10.0.0.1", proto="tcp")),  # 1: deny, tcp
        build_frame(FrameSpec(src="172.16.0.1", dst="10.0.0.1", proto="tcp")),  # default, tcp
    ]
    counts = [5, 4, 3, 2, 6, 1, 2, 7, 9]
    mix = [frame for frame, n in zip(frames, counts, strict=True) for _ in range(n)]

    def run(rules: list[Rule]) -> tuple[dict[str, int], dict[int, int]]:
        return run_rules(veth_ns, prog, rules, mix)

    def fast_pairs() -> dict[str, int]:  # what the kernel counted on the fast path only
        return fast_counters(prog, "fast_")

    def pair(*taken: int) -> tuple[int, int]:  # (packets, bytes) of these frames x counts
        return (sum(counts[i] for i in taken), sum(counts[i] * len(frames[i]) for i in taken))

    expected_pairs = {"rule_udp": pair(0, 2), "rule_tcp": pair(7), "default_udp": pair(4),
                      "default_tcp": pair(8)}

    def pairs_since(before: dict[str, int]) -> dict[str, tuple[int, int]]:
        now = fast_pairs()
        return {key: (now[f"fast_{key}_packets"] - before[f"fast_{key}_packets"],
                      now[f"fast_{key}_bytes"] - before[f"fast_{key}_bytes"])
                for key in expected_pairs}

    before = fast_pairs()
    fast_counts, fast_hits = run(cidr)
    assert pairs_since(before) == expected_pairs  # each pair exactly; VLAN and ICMP not here
    before = fast_pairs()
    general_counts, general_hits = run([*cidr, unrelated])
    assert set(pairs_since(before).values()) == {(0, 0)}  # the general path never uses them
    assert fast_counts == general_counts
    hits = {1: 5 + 1 + 2 + 7, 2: 4, 3: 3, 4: 2}
    assert {r: n for r, n in fast_hits.items() if n} == hits
    assert {r: n for r, n in general_hits.items() if n} == hits
    assert fast_counts["dropped_rule"] == 5 + 3 + 1 + 2 + 7
    assert fast_counts["dropped_default"] == 6 + 9
    assert fast_counts["tcp_packets"] == 4 + 2 + 7 + 9
    assert fast_counts["passed"] == 4 + 2 and fast_counts["vlan_packets"] == 2


def test_an_update_that_frees_index_blocks_waits_out_frames_in_flight(
        veth_ns: VethNs, make_xdp: Callable[..., XdpProgram],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A block freed by one update may hold another prefix after the next: the update that
    frees it returns only after an RCU grace period, and one that frees none does not wait."""
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    waits: list[int] = []
    monkeypatch.setattr(loader, "wait_for_programs_in_flight", lambda: waits.append(1))
    two = [Rule(1, "deny", src="10.1.2.0/24"), Rule(2, "deny", src="10.2.3.0/24")]
    prog.rules.apply(RuleSet(two))
    prog.rules.apply(RuleSet([*two, Rule(3, "deny", dst="10.9.9.0/24")]))
    assert waits == []  # blocks added, none freed
    prog.rules.apply(RuleSet(two[:1]))
    assert waits == [1]  # 10.2/16's level-2 block and 10.2.3/24's level-3 block freed
