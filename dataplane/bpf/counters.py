"""Per-interface counters as user space sees them: the per-CPU slots of one ifindex, summed,
with the XDP drop fast path's (packets, bytes) pairs folded into the totals they belong to."""

from __future__ import annotations

import builtins
from dataclasses import asdict, dataclass

import numpy as np

from dataplane.bpf.layout import COUNTER_FIELDS, COUNTER_STATE_FIELDS, IfCounters, percpu_stride

__all__ = ["SHOWN_FIELDS", "InterfaceCounters", "dropped_per_cpu", "fold_fast_path"]

_MALFORMED_PREFIX = "mal_"
_FAST_PREFIX = "fast"  # fast_* (IPv4) and fast6_* (IPv6) pairs

# Every counter user space shows: the kernel's fields less the fast-path pairs (folded into
# the others) and the drop records' state (not counts).
SHOWN_FIELDS = tuple(name for name in COUNTER_FIELDS
                     if not name.startswith(_FAST_PREFIX) and name not in COUNTER_STATE_FIELDS)


def fold_fast_path(values: dict[str, int]) -> dict[str, int]:
    """Move the fast-path pairs (see floe_kern_user.h) into the totals they stand for.

    A frame the kernel dropped on the fast path is counted only in fast_{verdict}_{l4}_*
    (IPv4) or fast6_{verdict}_{l4}_* (IPv6): it is one more frame in packets/bytes, ipv4_* or
    ipv6_*, tcp_*/udp_*, and one more dropped_rule or dropped_default, exactly as the general
    path would have counted it; its bytes join dropped_bytes.
    """
    out = {name: value for name, value in values.items()
           if not name.startswith(_FAST_PREFIX) and name not in COUNTER_STATE_FIELDS}
    for fast, l3 in (("fast", "ipv4"), ("fast6", "ipv6")):
        for verdict in ("rule", "default"):
            for l4 in ("tcp", "udp"):
                packets = values[f"{fast}_{verdict}_{l4}_packets"]
                octets = values[f"{fast}_{verdict}_{l4}_bytes"]
                for prefix in ("", f"{l3}_", f"{l4}_"):
                    out[f"{prefix}packets"] += packets
                    out[f"{prefix}bytes"] += octets
                out[f"dropped_{verdict}"] += packets
                out["dropped_bytes"] += octets
    return out


_DROP_PACKETS = ("dropped_rule", "dropped_default", "dropped_malformed",
                 *(f"{fast}_{verdict}_{l4}_packets" for fast in ("fast", "fast6")
                   for verdict in ("rule", "default") for l4 in ("tcp", "udp")))
_DROP_BYTES = ("dropped_bytes", *(f"{fast}_{verdict}_{l4}_bytes" for fast in ("fast", "fast6")
                                  for verdict in ("rule", "default") for l4 in ("tcp", "udp")))


def dropped_per_cpu(raw: builtins.bytes, ncpus: int) -> tuple[np.ndarray, np.ndarray]:
    """Per CPU, the frames dropped on the interface and their bytes: the sums drop_totals()
    in floe_xdp.c takes a drop record's weight from (every kind, the fast pairs unfolded)."""
    stride = percpu_stride(len(bytes(IfCounters())))
    words = np.frombuffer(raw, dtype=np.uint64, count=ncpus * stride // 8).reshape(
        ncpus, stride // 8)
    packets = words[:, [COUNTER_FIELDS.index(name) for name in _DROP_PACKETS]].sum(axis=1)
    octets = words[:, [COUNTER_FIELDS.index(name) for name in _DROP_BYTES]].sum(axis=1)
    return packets, octets


@dataclass(slots=True, frozen=True)
class InterfaceCounters:
    """Totals since the maps were created (they survive loader restarts).

    Invariant kept by the XDP program (once the fast path is folded in): packets == passed +
    redirected + dropped.
    """

    ifindex: int = 0
    packets: int = 0
    bytes: int = 0
    ipv4_packets: int = 0
    ipv4_bytes: int = 0
    ipv6_packets: int = 0
    ipv6_bytes: int = 0
    l3_other_packets: int = 0
    l3_other_bytes: int = 0
    tcp_packets: int = 0
    tcp_bytes: int = 0
    udp_packets: int = 0
    udp_bytes: int = 0
    icmp_packets: int = 0
    icmp_bytes: int = 0
    icmpv6_packets: int = 0
    icmpv6_bytes: int = 0
    l4_other_packets: int = 0
    l4_other_bytes: int = 0
    vlan_packets: int = 0
    fragments: int = 0
    passed: int = 0
    redirected: int = 0
    redirect_no_socket: int = 0
    sampled_out: int = 0
    dropped_rule: int = 0
    dropped_default: int = 0
    dropped_malformed: int = 0
    malformed: int = 0
    mal_l2_truncated: int = 0
    mal_vlan_truncated: int = 0
    mal_vlan_too_deep: int = 0
    mal_l3_truncated: int = 0
    mal_ipv4_bad_version: int = 0
    mal_ipv4_bad_ihl: int = 0
    mal_ipv4_bad_total_len: int = 0
    mal_ipv6_bad_version: int = 0
    mal_ipv6_ext_truncated: int = 0
    mal_ipv6_too_many_ext: int = 0
    mal_l4_truncated: int = 0
    mal_tcp_bad_doff: int = 0
    flow_update_failed: int = 0
    mal_ipv6_bad_payload_len: int = 0
    ring_passed: int = 0
    ring_dropped: int = 0
    ring_full: int = 0
    dropped_bytes: int = 0

    @property
    def dropped(self) -> int:
        """Frames dropped for any reason."""
        return self.dropped_rule + self.dropped_default + self.dropped_malformed

    @property
    def malformed_by_reason(self) -> dict[str, int]:
        """Malformed frame counts keyed by reason (field name without the mal_ prefix)."""
        return {
            name.removeprefix(_MALFORMED_PREFIX): getattr(self, name)
            for name in SHOWN_FIELDS
            if name.startswith(_MALFORMED_PREFIX)
        }

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def __sub__(self, other: InterfaceCounters) -> InterfaceCounters:
        """Field-wise difference (a delta between two reads)."""
        values = {name: getattr(self, name) - getattr(other, name) for name in SHOWN_FIELDS}
        return InterfaceCounters(ifindex=self.ifindex, **values)

    @classmethod
    def from_percpu(cls, ifindex: int, raw: builtins.bytes, ncpus: int) -> InterfaceCounters:
        """Sum the per-CPU slots of one map value (value size rounded to 8 per CPU)."""
        stride = percpu_stride(len(bytes(IfCounters())))
        words = np.frombuffer(raw, dtype=np.uint64, count=ncpus * stride // 8)
        totals = words.reshape(ncpus, stride // 8)[:, : len(COUNTER_FIELDS)].sum(axis=0)
        values = {n: int(v) for n, v in zip(COUNTER_FIELDS, totals, strict=True)}
        return cls(ifindex=ifindex, **fold_fast_path(values))
