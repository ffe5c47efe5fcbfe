"""The drop fast path's pairs fold into exactly the totals the general path would have counted."""

from __future__ import annotations

import numpy as np

from dataplane.bpf.counters import (
    SHOWN_FIELDS,
    InterfaceCounters,
    dropped_per_cpu,
    fold_fast_path,
)
from dataplane.bpf.layout import COUNTER_FIELDS, IfCounters, percpu_stride


def _raw(per_cpu: list[dict[str, int]]) -> bytes:
    """A per-CPU map value as the kernel hands it over: one IfCounters per CPU."""
    stride = percpu_stride(len(bytes(IfCounters()))) // 8
    words = np.zeros((len(per_cpu), stride), dtype=np.uint64)
    for cpu, values in enumerate(per_cpu):
        for name, value in values.items():
            words[cpu, COUNTER_FIELDS.index(name)] = value
    return words.tobytes()


def test_each_pair_lands_in_its_class_and_verdict() -> None:
    """Every shown field is checked: a fold that touched any other counter fails here."""
    general = {"packets": 10, "bytes": 1000, "ipv4_packets": 6, "ipv4_bytes": 600,
               "tcp_packets": 3, "tcp_bytes": 300, "udp_packets": 2, "udp_bytes": 200,
               "passed": 9, "dropped_rule": 1, "dropped_bytes": 64}
    cpu0 = {**general, "fast_rule_tcp_packets": 1, "fast_rule_tcp_bytes": 60,
            "fast_rule_udp_packets": 2, "fast_rule_udp_bytes": 130,
            "fast_default_udp_packets": 1, "fast_default_udp_bytes": 70}
    cpu1 = {"fast_rule_tcp_packets": 10, "fast_rule_tcp_bytes": 600,
            "fast_default_tcp_packets": 4, "fast_default_tcp_bytes": 270,
            "fast_default_udp_packets": 8, "fast_default_udp_bytes": 550}
    c = InterfaceCounters.from_percpu(7, _raw([cpu0, cpu1]), 2)
    rule_tcp, rule_udp, default_tcp, default_udp = (11, 660), (2, 130), (4, 270), (9, 620)
    fast = [rule_tcp, rule_udp, default_tcp, default_udp]
    expected = dict.fromkeys(SHOWN_FIELDS, 0) | {
        "ifindex": 7,
        "packets": 10 + sum(p for p, _ in fast), "bytes": 1000 + sum(b for _, b in fast),
        "ipv4_packets": 6 + sum(p for p, _ in fast), "ipv4_bytes": 600 + sum(b for _, b in fast),
        "tcp_packets": 3 + rule_tcp[0] + default_tcp[0],
        "tcp_bytes": 300 + rule_tcp[1] + default_tcp[1],
        "udp_packets": 2 + rule_udp[0] + default_udp[0],
        "udp_bytes": 200 + rule_udp[1] + default_udp[1],
        "passed": 9,
        "dropped_rule": 1 + rule_tcp[0] + rule_udp[0],
        "dropped_default": default_tcp[0] + default_udp[0],
        "dropped_bytes": 64 + sum(b for _, b in fast),
    }
    assert c.as_dict() == expected
    assert c.packets == c.passed + c.redirected + c.dropped


def test_fast_fields_are_never_shown() -> None:
    fields = set(InterfaceCounters().as_dict()) - {"ifindex"}
    assert fields == set(SHOWN_FIELDS)
    assert not any(name.startswith("fast") for name in fields)
    assert set(COUNTER_FIELDS) - set(SHOWN_FIELDS) == {
        f"{fast}_{verdict}_{l4}_{unit}" for fast in ("fast", "fast6")
        for verdict in ("rule", "default") for l4 in ("tcp", "udp")
        for unit in ("packets", "bytes")} | {"drop_rec_look_jiffies", "drop_rec_skip"}


def test_ipv6_pairs_land_in_the_ipv6_class() -> None:
    c = InterfaceCounters.from_percpu(3, _raw([
        {"fast6_rule_tcp_packets": 2, "fast6_rule_tcp_bytes": 180,
         "fast6_default_udp_packets": 5, "fast6_default_udp_bytes": 450},
        {"fast6_rule_udp_packets": 1, "fast6_rule_udp_bytes": 90}]), 2)
    shown = {k: v for k, v in c.as_dict().items() if v and k != "ifindex"}
    assert shown == {"packets": 8, "bytes": 720, "ipv6_packets": 8, "ipv6_bytes": 720,
                     "tcp_packets": 2, "tcp_bytes": 180, "udp_packets": 6, "udp_bytes": 540,
                     "dropped_rule": 3, "dropped_default": 5, "dropped_bytes": 720}


def test_fold_is_linear_so_deltas_and_sums_stay_exact() -> None:
    a = dict.fromkeys(COUNTER_FIELDS, 0) | {"fast_rule_udp_packets": 5, "fast_rule_udp_bytes": 300}
    b = dict.fromkeys(COUNTER_FIELDS, 0) | {"fast_rule_udp_packets": 2, "fast_rule_udp_bytes": 100,
                                            "packets": 1, "bytes": 64, "passed": 1}
    both = {name: a[name] + b[name] for name in COUNTER_FIELDS}
    folded = fold_fast_path(both)
    assert folded == {name: fold_fast_path(a)[name] + fold_fast_path(b)[name]
                      for name in SHOWN_FIELDS}
    delta = InterfaceCounters(**fold_fast_path(both)) - InterfaceCounters(**fold_fast_path(b))
    assert (delta.packets, delta.bytes, delta.dropped_rule, delta.udp_packets) == (5, 300, 5, 5)


def test_dropped_per_cpu_sums_every_kind_of_drop_per_cpu() -> None:
    """The sums a drop record's weight is taken from (drop_totals() in floe_xdp.c): every
    drop counter and fast pair, per CPU; nothing that is not a drop."""
    cpu0 = {"dropped_rule": 1, "dropped_default": 2, "dropped_malformed": 3,
            "dropped_bytes": 400, "fast_rule_tcp_packets": 5, "fast_rule_tcp_bytes": 300,
            "fast6_default_udp_packets": 7, "fast6_default_udp_bytes": 700,
            "packets": 99, "bytes": 9999, "passed": 50, "ring_dropped": 4,
            "drop_rec_look_jiffies": 4295000000, "drop_rec_skip": 2}
    cpu1 = {"fast_default_udp_packets": 10, "fast_default_udp_bytes": 1000,
            "fast6_rule_tcp_packets": 1, "fast6_rule_tcp_bytes": 90}
    packets, octets = dropped_per_cpu(_raw([cpu0, cpu1]), 2)
    assert packets.tolist() == [1 + 2 + 3 + 5 + 7, 10 + 1]
    assert octets.tolist() == [400 + 300 + 700, 1000 + 90]
    folded = InterfaceCounters.from_percpu(1, _raw([cpu0, cpu1]), 2)
    assert folded.dropped == int(packets.sum()) and folded.dropped_bytes == int(octets.sum())
