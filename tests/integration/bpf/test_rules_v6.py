"""IPv6 at the driver: the per-prefix-length hash answers exactly as the LPM trie (longest
match across lengths, allow under deny, more lengths than the index holds), the straight-line
drop path counts and credits exactly what the general path does, and rule changes move the
index with them."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import numpy as np
import pytest

from dataplane.bpf import Rule, RuleSet, XdpProgram, loader
from dataplane.bpf import libbpf as lb
from dataplane.bpf import v6_index as v6
from dataplane.bpf.errors import ObjectFileError
from dataplane.bpf.layout import FLOE_V6_LENS_TRIE, FLOE_V6_MAX_LENS, XDP_OBJECT, V6Lens
from dataplane.bpf.maps import BpfMap
from dataplane.bpf.rcu import wait_for_programs_in_flight
from dataplane.bpf.v6_index import SLOT_DTYPE, TOMB
from dataplane.trafficgen import FrameSpec, build_frame
from tests.integration.bpf.ruleruns import fast_counters, run_rules, send_counted
from tests.support.topology import VethNs

pytestmark = pytest.mark.root

STRICT_ALIGNMENT = 1  # BPF_F_STRICT_ALIGNMENT

NESTED = [Rule(1, "allow", src="2001:db8::/32"), Rule(2, "deny", src="2001:db8:1::/48"),
          Rule(3, "allow", src="2001:db8:1:2::/64"), Rule(4, "deny", src="2001:db8:1:2::9/128"),
          Rule(5, "deny", dst="2001:db8:ffff::/48")]
# (source, destination, the rule credited, dropped?)
CASES = [("2001:db8:7::1", "fd00::1", 1, False), ("2001:db8:1:7::1", "fd00::1", 2, True),
         ("2001:db8:1:2::1", "fd00::1", 3, False), ("2001:db8:1:2::9", "fd00::1", 4, True),
         ("2001:db8:1:2::1", "2001:db8:ffff::5", 5, True), ("fd00::7", "fd00::1", 0, False)]


def _verdicts(veth_ns: VethNs, prog: XdpProgram, proto: str) -> list[tuple[int, bool]]:
    """(rule credited, dropped) per case, one frame each, read from the counters and hits."""
    out = []
    for src, dst, _rule, _drop in CASES:
        hits = {r: h.packets for r, h in prog.rule_hits().items()}
        dropped = prog.counters().dropped
        send_counted(veth_ns, prog, [build_frame(FrameSpec(src=src, dst=dst, proto=proto))])
        credited = [r for r, h in prog.rule_hits().items() if h.packets != hits.get(r, 0)]
        out.append((credited[0] if credited else 0, prog.counters().dropped > dropped))
    return out


@pytest.mark.parametrize("proto", ["udp", "tcp", "icmpv6"])
def test_longest_match_across_lengths(veth_ns: VethNs, make_xdp: Callable[..., XdpProgram],
                                      proto: str) -> None:
    """udp/tcp take the straight-line path, icmpv6 the general one: the same answers."""
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    prog.rules.apply(RuleSet(NESTED))
    lens = V6Lens.from_buffer_copy(prog.map("floe_v6_lens").lookup(bytes(4)) or b"")
    assert (lens.src_n, [entry.len for entry in lens.src[:4]], lens.dst_n, lens.dst[0].len) == (
        4, [128, 64, 48, 32], 1, 48)
    assert [v6.length_entry(entry.len) for entry in lens.src[:4]] == [
        (entry.mask_hi, entry.mask_lo, entry.salt) for entry in lens.src[:4]]
    assert _verdicts(veth_ns, prog, proto) == [(rule, drop) for *_, rule, drop in CASES]


def test_more_lengths_than_the_index_holds_fall_back_to_the_trie(
        veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    extra = [Rule(100 + n, "allow", src=str(ipaddress.ip_network(f"3fff:{n:x}::/{n}",
                                                                  strict=False)))
             for n in range(16, 24)]  # eight more lengths, none matching the frames below
    prog.rules.apply(RuleSet(NESTED + extra))
    lens = V6Lens.from_buffer_copy(prog.map("floe_v6_lens").lookup(bytes(4)) or b"")
    assert lens.src_n == FLOE_V6_LENS_TRIE
    assert _verdicts(veth_ns, prog, "udp") == [(rule, drop) for *_, rule, drop in CASES]
    prog.rules.apply(RuleSet(NESTED))  # back under the limit: the hash again
    lens = V6Lens.from_buffer_copy(prog.map("floe_v6_lens").lookup(bytes(4)) or b"")
    assert lens.src_n == 4
    words = prog.map("floe_src_v6_t").mapped().view(SLOT_DTYPE)["word"]
    assert int(np.count_nonzero((words != 0) & (words != TOMB))) == 4  # the extras are gone
    assert _verdicts(veth_ns, prog, "udp") == [(rule, drop) for *_, rule, drop in CASES]


def test_v6_fast_path_agrees_with_the_general_path(
        veth_ns: VethNs, make_xdp: Callable[..., XdpProgram]) -> None:
    """Plain IPv6 TCP/UDP drops take the straight-line path while CIDR rules alone are in use,
    counting one fast6 pair; with another rule kind present every frame takes the general
    path. Both count and credit exactly the same."""
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    prog.set_config(default_action="deny")
    cidr = [Rule(1, "deny", src="2001:db8:1::/48"), Rule(2, "allow", src="2001:db8:1:80::/57"),
            Rule(3, "deny", dst="2001:db8:2::/48"), Rule(4, "allow", dst="2001:db8:3::/48")]
    unrelated = Rule(5, "allow", proto="sctp")
    frames = [
        build_frame(FrameSpec(src="2001:db8:1::9", dst="fd00::1", proto="udp")),  # 1
        build_frame(FrameSpec(src="2001:db8:1:81::1", dst="fd00::1", proto="tcp")),  # 2
        build_frame(FrameSpec(src="2001:db8:1:81::1", dst="2001:db8:2::3", proto="udp")),  # 3
        build_frame(FrameSpec(src="fd00::7", dst="2001:db8:3::5", proto="tcp")),  # 4
        build_frame(FrameSpec(src="fd00::7", dst="fd00::1", proto="udp")),  # default deny
        build_frame(FrameSpec(src="2001:db8:1::9", dst="fd00::1", proto="icmpv6")),  # general
        build_frame(FrameSpec(src="2001:db8:1::9", dst="fd00::1", proto="udp", vlans=(7,))),
        build_frame(FrameSpec(src="2001:db8:1::9", dst="fd00::1", proto="udp",
                              ipv6_ext=(60,))),  # an extension header: general path
        build_frame(FrameSpec(src="2001:db8:1::9", dst="fd00::1", proto="tcp")),  # 1, tcp
        build_frame(FrameSpec(src="fd00::7", dst="fd00::1", proto="tcp")),  # default, tcp
    ]
    counts = [5, 4, 3, 2, 6, 1, 2, 3, 7, 9]
    mix = [frame for frame, n in zip(frames, counts, strict=True) for _ in range(n)]

    def run(rules: list[Rule]) -> tuple[dict[str, int], dict[int, int]]:
        return run_rules(veth_ns, prog, rules, mix)

    def fast6() -> dict[str, int]:
        return fast_counters(prog, "fast")

    def pair(*taken: int) -> tuple[int, int]:
        return (sum(counts[i] for i in taken), sum(counts[i] * len(frames[i]) for i in taken))

    expected = {"rule_udp": pair(0, 2), "rule_tcp": pair(8), "default_udp": pair(4),
                "default_tcp": pair(9)}

    def since(before: dict[str, int]) -> dict[str, tuple[int, int]]:
        now = fast6()
        assert all(now[k] == before[k] for k in now if k.startswith("fast_"))  # no v4 pair
        return {key: (now[f"fast6_{key}_packets"] - before[f"fast6_{key}_packets"],
                      now[f"fast6_{key}_bytes"] - before[f"fast6_{key}_bytes"])
                for key in expected}

    before = fast6()
    fast_counts, fast_hits = run(cidr)
    assert since(before) == expected
    before = fast6()
    general_counts, general_hits = run([*cidr, unrelated])
    assert set(since(before).values()) == {(0, 0)}
    assert fast_counts == general_counts
    hits = {1: 5 + 1 + 2 + 3 + 7, 2: 4, 3: 3, 4: 2}
    assert {r: n for r, n in fast_hits.items() if n} == hits
    assert {r: n for r, n in general_hits.items() if n} == hits
    assert fast_counts["dropped_rule"] == 5 + 3 + 1 + 2 + 3 + 7
    assert fast_counts["dropped_default"] == 6 + 9
    assert fast_counts["ipv6_packets"] == sum(counts)
    assert fast_counts["passed"] == 4 + 2


def test_what_frames_may_be_reading_is_rewritten_only_after_they_finished(
        veth_ns: VethNs, make_xdp: Callable[..., XdpProgram],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A frame reads a direction's count, then its length entries (several words each) and
    the table, while user space writes them. Replayed over every write of an apply: entries
    change only while the count says "ask the trie" and after a grace period has waited out
    the frames that read the count before; the table is rebuilt under the same two
    conditions; a count changes only over entries already in place."""
    prog = make_xdp(veth_ns.pair.host, mode="inline")
    prog.rules.apply(RuleSet(NESTED))
    first = V6Lens.from_buffer_copy(prog.map("floe_v6_lens").lookup(bytes(4)) or b"")
    events: list[tuple[str, V6Lens | None]] = []
    update, build = BpfMap.update, v6.build
    rebuild_src = [False]

    def recording(self: BpfMap, key: bytes, value: bytes, *args: int) -> None:
        if self.name == "floe_v6_lens":
            events.append(("write", V6Lens.from_buffer_copy(value)))
        update(self, key, value, *args)

    def grace() -> None:
        events.append(("grace", None))
        wait_for_programs_in_flight()

    def needs_rebuild(table: np.ndarray) -> bool:  # type: ignore[type-arg]
        """True once when armed: for the first direction synced, the source."""
        armed, rebuild_src[0] = rebuild_src[0], False
        return armed

    def building(wanted: dict[v6.Prefix6, int]) -> tuple[np.ndarray, bool]:  # type: ignore[type-arg]
        events.append(("build", None))
        return build(wanted)

    monkeypatch.setattr(BpfMap, "update", recording)
    monkeypatch.setattr(loader, "wait_for_programs_in_flight", grace)
    monkeypatch.setattr(v6, "needs_rebuild", needs_rebuild)
    monkeypatch.setattr(v6, "build", building)
    changed = [Rule(1, "allow", src="2001:db8::/40"), Rule(2, "deny", src="2001:db8:1::/56"),
               Rule(5, "deny", dst="2001:db8:ffff::/96")]
    for rules, rebuild in ((changed, False), (NESTED, False), (NESTED[:2], True),
                           (NESTED[:2] + NESTED[4:], False), (NESTED[:2], False)):
        rebuild_src[0] = rebuild
        prog.rules.apply(RuleSet(rules))

    def entries(state: V6Lens, side: str) -> list[tuple[int, int, int, int]]:
        return [(e.mask_hi, e.mask_lo, e.salt, e.len) for e in getattr(state, side)]

    state, pending, builds = first, {"src": False, "dst": False}, 0
    for kind, written in events:
        if kind == "grace":
            pending = {"src": False, "dst": False}
        elif kind == "build":
            assert state.src_n == FLOE_V6_LENS_TRIE and not pending["src"]
            builds += 1
        else:
            assert written is not None
            for side in ("src", "dst"):
                counts = (getattr(state, f"{side}_n"), getattr(written, f"{side}_n"))
                if entries(state, side) != entries(written, side):
                    assert counts == (FLOE_V6_LENS_TRIE, FLOE_V6_LENS_TRIE)
                    assert not pending[side]
                if counts[0] not in (0, FLOE_V6_LENS_TRIE) and counts[1] == FLOE_V6_LENS_TRIE:
                    pending[side] = True  # frames may hold the old count and read on
                for e in getattr(written, side)[:min(counts[1], FLOE_V6_MAX_LENS)]:
                    assert (e.mask_hi, e.mask_lo, e.salt) == v6.length_entry(e.len)
            state = written
    assert builds == 1
    # one per direction whose entries changed while frames could be walking them: 2 + 2 + 2,
    # none when dst comes back from a count of 0 (nothing was walked), 1 when it goes again
    assert sum(kind == "grace" for kind, _ in events) == 7
    assert (state.src_n, [e.len for e in state.src[:2]], state.dst_n) == (2, [48, 32], 0)
    assert _verdicts(veth_ns, prog, "udp")[:2] == [(1, False), (2, True)]


def test_the_program_loads_where_alignment_is_enforced() -> None:
    """The v6 probe reads each address half with one 8-byte load (bpf/floe_xdp.c lookup_v6):
    the verifier must accept that where the CPU cannot load unaligned words."""
    with lb.capture_log() as lines:
        obj = lb.lib.bpf_object__open_file(str(XDP_OBJECT).encode(), None)
        lb.check_ptr(obj, ObjectFileError, "open", lines)
    try:
        prog = lb.lib.bpf_object__find_program_by_name(obj, b"floe_xdp")
        lb.lib.bpf_program__set_flags(prog, lb.lib.bpf_program__flags(prog) | STRICT_ALIGNMENT)
        with lb.capture_log() as lines:
            assert lb.lib.bpf_object__load(obj) == 0, "".join(lines)[-2000:]
    finally:
        lb.lib.bpf_object__close(obj)
