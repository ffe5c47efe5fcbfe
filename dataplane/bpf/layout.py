"""ctypes mirrors of bpf/floe_kern_user.h (the one header with every map layout).

Not a second source of truth: tests/unit/bpf/test_layout_btf.py checks every struct
(field names, offsets, sizes) and enum here against the BTF of bpf/build/floe_xdp.o. The
header is read at import time from wherever `dataplane.bpf.assets` finds it.
"""

from __future__ import annotations

import ctypes
import re
from enum import IntEnum, IntFlag
from pathlib import Path

import numpy as np

from dataplane.bpf.assets import BPF_FILES

__all__ = [
    "BPF_DIR",
    "COUNTER_FIELDS",
    "COUNTER_STATE_FIELDS",
    "DEFINES",
    "ENUMS",
    "FLOE_ICMP_FLOW_PORT",
    "FLOE_ICMP_HDR_LEN",
    "FLOE_MAX_CIDR_RULES",
    "FLOE_MAX_EXT_HDRS",
    "FLOE_MAX_FLOWS",
    "FLOE_MAX_IFACES",
    "FLOE_MAX_PORT_RULES",
    "FLOE_MAX_PROTO_RULES",
    "FLOE_MAX_QUEUES",
    "FLOE_MAX_RULES",
    "FLOE_MAX_VLAN_TAGS",
    "FLOE_RING_BYTES",
    "FLOE_SNAP_DEFAULT",
    "FLOE_SNAP_MAX",
    "FLOE_V6_LENS_TRIE",
    "FLOE_V6_MAX_LENS",
    "FLOW_DTYPE",
    "GEN_OBJECT",
    "KERN_USER_HEADER",
    "MAPS",
    "RING_REC_DTYPE",
    "STRUCTS",
    "XDP_OBJECT",
    "Action",
    "FloeConfig",
    "FlowKey",
    "FlowVal",
    "IfCounters",
    "LpmV4Key",
    "LpmV6Key",
    "Mode",
    "NoData",
    "PortDir",
    "PortKey",
    "ProtoKey",
    "RingRec",
    "RingState",
    "RuleHits",
    "RuleMaps",
    "RuleVal",
    "V6Len",
    "V6Lens",
    "V6Slot",
    "V6Table",
    "Verdict",
    "XskMode",
    "percpu_stride",
    "read_defines",
]

# A checkout's bpf/ (and bpf/build/), or the package's data in an installed wheel (assets.py).
KERN_USER_HEADER = BPF_FILES.header
BPF_DIR = KERN_USER_HEADER.parent
XDP_OBJECT = BPF_FILES.xdp_object
GEN_OBJECT = BPF_FILES.gen_object


def read_defines(header: Path = KERN_USER_HEADER) -> dict[str, int]:
    """Every integer `#define FLOE_*` of the header: the constants have exactly one copy."""
    pattern = re.compile(r"^#define\s+(FLOE_[A-Z0-9_]+)\s+(0x[0-9a-fA-F]+|\d+)\b", re.MULTILINE)
    return {name: int(value, 0) for name, value in pattern.findall(header.read_text())}


DEFINES = read_defines()
FLOE_MAX_IFACES = DEFINES["FLOE_MAX_IFACES"]
FLOE_MAX_QUEUES = DEFINES["FLOE_MAX_QUEUES"]
FLOE_MAX_CIDR_RULES = DEFINES["FLOE_MAX_CIDR_RULES"]
FLOE_MAX_PORT_RULES = DEFINES["FLOE_MAX_PORT_RULES"]
FLOE_MAX_PROTO_RULES = DEFINES["FLOE_MAX_PROTO_RULES"]
FLOE_MAX_RULES = DEFINES["FLOE_MAX_RULES"]
FLOE_MAX_FLOWS = DEFINES["FLOE_MAX_FLOWS"]
FLOE_MAX_VLAN_TAGS = DEFINES["FLOE_MAX_VLAN_TAGS"]
FLOE_MAX_EXT_HDRS = DEFINES["FLOE_MAX_EXT_HDRS"]
FLOE_ICMP_FLOW_PORT = DEFINES["FLOE_ICMP_FLOW_PORT"]
FLOE_ICMP_HDR_LEN = DEFINES["FLOE_ICMP_HDR_LEN"]
FLOE_RING_BYTES = DEFINES["FLOE_RING_BYTES"]
FLOE_SNAP_DEFAULT = DEFINES["FLOE_SNAP_DEFAULT"]
FLOE_SNAP_MAX = DEFINES["FLOE_SNAP_MAX"]
FLOE_V6_MAX_LENS = DEFINES["FLOE_V6_MAX_LENS"]
FLOE_V6_LENS_TRIE = DEFINES["FLOE_V6_LENS_TRIE"]

u8, u16, u32, u64 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64


class Mode(IntEnum):
    """enum floe_mode."""

    INLINE = 0
    TAP = 1
    PASSTHROUGH = 2


class Verdict(IntEnum):
    """enum floe_verdict (the uplink's FlowRecord.verdict uses the same numbers)."""

    UNKNOWN = 0
    FORWARDED = 1
    DROPPED = 2


class XskMode(IntEnum):
    """enum floe_xsk_mode: how the running dataplane's AF_XDP sockets are bound."""

    NONE = 0
    COPY = 1
    ZEROCOPY = 2


class Action(IntEnum):
    """enum floe_action."""

    ALLOW = 0
    DENY = 1


class PortDir(IntEnum):
    """enum floe_port_dir."""

    DST = 0
    SRC = 1


class RuleMaps(IntFlag):
    """enum floe_rule_maps: bits of FloeConfig.rule_maps (which rule maps are non-empty)."""

    SRC_V4 = 1
    DST_V4 = 2
    SRC_V6 = 4
    DST_V6 = 8
    PROTO = 16
    PORT_DST = 32
    PORT_SRC = 64


class FloeConfig(ctypes.Structure):
    _fields_ = [
        ("mode", u32),
        ("default_action", u32),
        ("malformed_action", u32),
        ("sample_n", u32),
        ("track_flows", u32),
        ("rule_maps", u32),
        ("snaplen", u32),
        ("drop_sample_n", u32),
        ("drop_rate_cap", u32),
        ("xsk_mode", u32),
        ("drop_epoch", u32),
    ]


COUNTER_FIELDS = (
    "packets bytes ipv4_packets ipv4_bytes ipv6_packets ipv6_bytes l3_other_packets "
    "l3_other_bytes tcp_packets tcp_bytes udp_packets udp_bytes icmp_packets icmp_bytes "
    "icmpv6_packets icmpv6_bytes l4_other_packets l4_other_bytes vlan_packets fragments passed "
    "redirected redirect_no_socket sampled_out dropped_rule dropped_default dropped_malformed "
    "malformed mal_l2_truncated mal_vlan_truncated mal_vlan_too_deep mal_l3_truncated "
    "mal_ipv4_bad_version mal_ipv4_bad_ihl mal_ipv4_bad_total_len mal_ipv6_bad_version "
    "mal_ipv6_ext_truncated mal_ipv6_too_many_ext mal_l4_truncated mal_tcp_bad_doff "
    "flow_update_failed mal_ipv6_bad_payload_len fast_rule_tcp_packets fast_rule_tcp_bytes "
    "fast_rule_udp_packets fast_rule_udp_bytes fast_default_tcp_packets fast_default_tcp_bytes "
    "fast_default_udp_packets fast_default_udp_bytes ring_passed ring_dropped ring_full "
    "fast6_rule_tcp_packets fast6_rule_tcp_bytes fast6_rule_udp_packets fast6_rule_udp_bytes "
    "fast6_default_tcp_packets fast6_default_tcp_bytes fast6_default_udp_packets "
    "fast6_default_udp_bytes dropped_bytes drop_rec_look_jiffies drop_rec_skip"
).split()


# The last fields of struct floe_if_counters are the drop records' state, not counts.
COUNTER_STATE_FIELDS = ("drop_rec_look_jiffies", "drop_rec_skip")


class IfCounters(ctypes.Structure):
    _fields_ = [(name, u64) for name in COUNTER_FIELDS]


class LpmV4Key(ctypes.Structure):
    _fields_ = [("prefixlen", u32), ("addr", u8 * 4)]


class LpmV6Key(ctypes.Structure):
    _fields_ = [("prefixlen", u32), ("addr", u8 * 16)]


class RuleVal(ctypes.Structure):
    _fields_ = [("rule_id", u32), ("action", u32), ("hit_slot", u32)]


class PortKey(ctypes.Structure):
    _fields_ = [("port", u16), ("proto", u8), ("dir", u8)]


class ProtoKey(ctypes.Structure):
    _fields_ = [("proto", u32)]


class V6Slot(ctypes.Structure):
    """struct floe_v6_slot: one prefix of the IPv6 index (the address masked to prefixlen, as
    two u64 loaded from its network-order bytes on this host) and its rule word."""

    _fields_ = [("hi", u64), ("lo", u64), ("prefixlen", u32), ("word", u32)]


class V6Table(ctypes.Structure):
    _fields_ = [("s", V6Slot * DEFINES["FLOE_V6_SLOTS"])]


class V6Len(ctypes.Structure):
    """struct floe_v6_len: one prefix length in use, with its masks and hash salt."""

    _fields_ = [("mask_hi", u64), ("mask_lo", u64), ("salt", u64), ("len", u32), ("_pad", u32)]


class V6Lens(ctypes.Structure):
    """struct floe_v6_lens: the prefix lengths in use per direction, longest first."""

    _fields_ = [
        ("src_n", u8),
        ("dst_n", u8),
        ("_pad", u8 * 6),
        ("src", V6Len * DEFINES["FLOE_V6_MAX_LENS"]),
        ("dst", V6Len * DEFINES["FLOE_V6_MAX_LENS"]),
    ]


class NoData(ctypes.Structure):
    """The key and value of a map that has none (the ring buffer): zero bytes."""

    _fields_ = ()


class RingRec(ctypes.Structure):
    """struct floe_ring_rec: the header of a ring buffer record (the frame's bytes follow)."""

    _fields_ = [
        ("ts_ns", u64),
        ("weight_bytes", u64),
        ("weight", u32),
        ("len", u32),
        ("rule_id", u32),
        ("caplen", u16),
        ("verdict", u8),
        ("_pad", u8),
    ]


class RingState(ctypes.Structure):
    _fields_ = [
        ("pass_weight", u64),
        ("pass_weight_bytes", u64),
        ("drop_base_packets", u64),
        ("drop_base_bytes", u64),
        ("window_ns", u64),
        ("window_left", u64),
        ("drop_epoch", u64),
    ]


class RuleHits(ctypes.Structure):
    _fields_ = [("packets", u64), ("bytes", u64)]


class DirL1(ctypes.Structure):
    _fields_ = [("w", u32 * DEFINES["FLOE_DIR_L1_SIZE"])]


class DirL2(ctypes.Structure):
    _fields_ = [("w", u32 * DEFINES["FLOE_DIR_L2_SIZE"])]


class DirL3(ctypes.Structure):
    _fields_ = [("w", u32 * DEFINES["FLOE_DIR_L3_SIZE"])]


class FlowKey(ctypes.Structure):
    _fields_ = [
        ("addr_a", u8 * 16),
        ("addr_b", u8 * 16),
        ("port_a", u16),
        ("port_b", u16),
        ("proto", u8),
        ("ip_version", u8),
        ("vlan", u16),
        ("ifindex", u32),
    ]


class FlowVal(ctypes.Structure):
    _fields_ = [
        ("packets_ab", u64),
        ("bytes_ab", u64),
        ("packets_ba", u64),
        ("bytes_ba", u64),
        ("first_seen_ns", u64),
        ("last_seen_ns", u64),
        ("tcp_flags", u8),
        ("initiator", u8),
        ("_pad", u8 * 6),
    ]


STRUCTS: dict[str, type[ctypes.Structure]] = {
    "floe_config": FloeConfig,
    "floe_if_counters": IfCounters,
    "floe_lpm_v4_key": LpmV4Key,
    "floe_lpm_v6_key": LpmV6Key,
    "floe_rule_val": RuleVal,
    "floe_port_key": PortKey,
    "floe_proto_key": ProtoKey,
    "floe_rule_hits": RuleHits,
    "floe_flow_key": FlowKey,
    "floe_flow_val": FlowVal,
    "floe_dir_l1": DirL1,
    "floe_dir_l2": DirL2,
    "floe_dir_l3": DirL3,
    "floe_ring_rec": RingRec,
    "floe_v6_slot": V6Slot,
    "floe_v6_table": V6Table,
    "floe_v6_len": V6Len,
    "floe_v6_lens": V6Lens,
    "floe_ring_state": RingState,
}

ENUMS: dict[str, type[IntEnum] | type[IntFlag]] = {
    "floe_mode": Mode,
    "floe_action": Action,
    "floe_port_dir": PortDir,
    "floe_rule_maps": RuleMaps,
    "floe_verdict": Verdict,
    "floe_xsk_mode": XskMode,
}

# map name -> (key struct or None for __u32, value struct or None for __u32, per-CPU?)
MAPS: dict[str, tuple[type[ctypes.Structure] | None, type[ctypes.Structure] | None, bool]] = {
    "floe_config": (None, FloeConfig, False),
    "floe_counters": (None, IfCounters, True),
    "floe_src_v4": (LpmV4Key, RuleVal, False),
    "floe_dst_v4": (LpmV4Key, RuleVal, False),
    "floe_src_v6": (LpmV6Key, RuleVal, False),
    "floe_dst_v6": (LpmV6Key, RuleVal, False),
    "floe_ports": (PortKey, RuleVal, False),
    "floe_protos": (ProtoKey, RuleVal, False),
    "floe_rule_hits": (None, RuleHits, True),
    "floe_flows": (FlowKey, FlowVal, False),
    "floe_xsks": (None, None, False),
    # the IPv4 CIDR index, one element per level (see dataplane/bpf/cidr_index.py)
    "floe_src_v4_l1": (None, DirL1, False),
    "floe_src_v4_l2": (None, DirL2, False),
    "floe_src_v4_l3": (None, DirL3, False),
    "floe_dst_v4_l1": (None, DirL1, False),
    "floe_dst_v4_l2": (None, DirL2, False),
    "floe_dst_v4_l3": (None, DirL3, False),
    # the IPv6 CIDR index: one hash table element per direction, and the lengths in use
    "floe_src_v6_t": (None, V6Table, False),
    "floe_dst_v6_t": (None, V6Table, False),
    "floe_v6_lens": (None, V6Lens, False),
    # hit slot -> rule id; the ring buffer and its per-CPU sampling state
    "floe_rule_ids": (None, None, False),
    "floe_ring": (NoData, NoData, False),
    "floe_ring_state": (None, RingState, True),
}

# A ring record's header as numpy reads it: RingRec's fields at RingRec's offsets.
_RING_FORMATS = {"ts_ns": "<u8", "weight_bytes": "<u8", "weight": "<u4", "len": "<u4",
                 "rule_id": "<u4", "caplen": "<u2", "verdict": "u1"}
RING_REC_DTYPE = np.dtype({
    "names": list(_RING_FORMATS),
    "formats": list(_RING_FORMATS.values()),
    "offsets": [getattr(RingRec, name).offset for name in _RING_FORMATS],
    "itemsize": ctypes.sizeof(RingRec),
})

# Flows read from the in-kernel LRU map, oriented by initiator (src = first sender seen).
FLOW_DTYPE = np.dtype(
    [
        ("src_addr", np.uint8, (16,)),
        ("dst_addr", np.uint8, (16,)),
        ("src_port", np.uint16),
        ("dst_port", np.uint16),
        ("proto", np.uint8),
        ("ip_version", np.uint8),
        ("vlan", np.uint16),
        ("ifindex", np.uint32),
        ("packets_fwd", np.uint64),
        ("bytes_fwd", np.uint64),
        ("packets_rev", np.uint64),
        ("bytes_rev", np.uint64),
        ("first_seen_ns", np.uint64),
        ("last_seen_ns", np.uint64),
        ("tcp_flags", np.uint8),
    ]
)


def percpu_stride(value_size: int) -> int:
    """Bytes per CPU slot in a per-CPU map value: the value size rounded up to 8."""
    return (value_size + 7) & ~7
