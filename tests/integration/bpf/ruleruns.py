"""Helpers shared by the rule tests: send frames and wait until XDP counted them, apply a rule
set and measure what one batch of frames did, and read the fast-path counter pairs."""

from __future__ import annotations

import numpy as np

from dataplane.bpf import Rule, RuleSet, XdpProgram
from dataplane.bpf.layout import COUNTER_FIELDS, FLOE_MAX_IFACES
from dataplane.trafficgen import AfPacketSender
from tests.support.topology import VethNs, wait_until

__all__ = ["fast_counters", "run_rules", "send_counted"]


def send_counted(veth_ns: VethNs, prog: XdpProgram, frames: list[bytes]) -> None:
    """Send from the peer and return once the program has counted every frame."""
    before = prog.counters().packets
    with AfPacketSender(veth_ns.pair.peer, veth_ns.namespace) as sender:
        assert sender.send(frames) == len(frames)
    assert wait_until(lambda: prog.counters().packets >= before + len(frames))


def run_rules(veth_ns: VethNs, prog: XdpProgram, rules: list[Rule],
              frames: list[bytes]) -> tuple[dict[str, int], dict[int, int]]:
    """Apply `rules`, send `frames`; the counter deltas and the packet hits per rule."""
    prog.rules.apply(RuleSet(rules))
    before_c = prog.counters().as_dict()
    before_h = {rule: hit.packets for rule, hit in prog.rule_hits().items()}
    send_counted(veth_ns, prog, frames)
    after_c = prog.counters().as_dict()
    hits = {rule: hit.packets - before_h.get(rule, 0) for rule, hit in prog.rule_hits().items()}
    return {k: after_c[k] - before_c[k] for k in after_c if k != "ifindex"}, hits


def fast_counters(prog: XdpProgram, prefix: str) -> dict[str, int]:
    """The raw counters whose names start with `prefix` ("fast_" for the IPv4 drop path,
    "fast" for both), summed over CPUs straight from the map."""
    counters = prog.map("floe_counters")
    raw = counters.lookup((prog.ifindex % FLOE_MAX_IFACES).to_bytes(4, "little"))
    assert raw is not None
    words = np.frombuffer(raw, dtype=np.uint64).reshape(counters.ncpus, -1).sum(axis=0)
    return {name: int(words[COUNTER_FIELDS.index(name)])
            for name in COUNTER_FIELDS if name.startswith(prefix)}
