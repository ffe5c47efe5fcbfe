"""Filter rules as data, and their translation into BPF map entries.

A rule has ONE match criterion — a source CIDR, a destination CIDR, a protocol, or a port
(TCP, UDP or both; destination or source) — so each lands in exactly one map key and the
kernel side stays a handful of lookups. Verdict semantics live in bpf/floe_xdp.c: any
matching deny drops, else any matching allow passes, else the default action.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from dataplane.bpf.errors import RuleError
from dataplane.bpf.layout import (
    FLOE_MAX_CIDR_RULES,
    FLOE_MAX_PORT_RULES,
    FLOE_MAX_PROTO_RULES,
    FLOE_MAX_RULES,
    Action,
    LpmV4Key,
    LpmV6Key,
    PortDir,
    PortKey,
    ProtoKey,
    RuleMaps,
    RuleVal,
)

__all__ = [
    "PROTOCOLS",
    "RULE_MAPS",
    "Rule",
    "RuleHitCount",
    "RuleSet",
    "rule_entries",
    "rule_maps_mask",
]

PROTOCOLS: dict[str, int] = {"icmp": 1, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "icmpv6": 58,
                             "sctp": 132}
_LIMITS = {"floe_src_v4": FLOE_MAX_CIDR_RULES, "floe_dst_v4": FLOE_MAX_CIDR_RULES,
           "floe_src_v6": FLOE_MAX_CIDR_RULES, "floe_dst_v6": FLOE_MAX_CIDR_RULES,
           "floe_ports": FLOE_MAX_PORT_RULES, "floe_protos": FLOE_MAX_PROTO_RULES}
RULE_MAPS = tuple(_LIMITS)  # names of the rule maps


@dataclass(slots=True, frozen=True)
class Rule:
    """One filter rule. Set exactly one of src / dst / port / proto (port may add proto)."""

    id: int
    action: Literal["allow", "deny"]
    src: str | None = None
    dst: str | None = None
    proto: str | int | None = None
    port: int | None = None
    port_dir: Literal["dst", "src"] = "dst"


@dataclass(slots=True, frozen=True)
class RuleHitCount:
    """Packets and bytes credited to one rule (summed over CPUs)."""

    packets: int
    bytes: int


@dataclass(slots=True)
class RuleSet:
    """The full desired rule set; applying it writes only the difference into the maps."""

    rules: list[Rule] = field(default_factory=list)

    def ids(self) -> set[int]:
        return {rule.id for rule in self.rules}


def _proto_number(proto: str | int) -> int:
    if isinstance(proto, str):
        if proto.lower() in PROTOCOLS:
            return PROTOCOLS[proto.lower()]
        if proto.isdigit():
            proto = int(proto)
        else:
            raise RuleError(f"unknown protocol {proto!r}")
    if not 0 <= proto <= 255:
        raise RuleError(f"protocol {proto} outside 0..255")
    return proto


def _cidr_entry(rule: Rule, cidr: str, side: str) -> tuple[str, bytes]:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError as error:
        raise RuleError(f"rule {rule.id}: bad CIDR {cidr!r}: {error}") from error
    if isinstance(net, ipaddress.IPv4Network):
        k4 = LpmV4Key(prefixlen=net.prefixlen)
        k4.addr[:] = list(net.network_address.packed)
        return f"floe_{side}_v4", bytes(k4)
    k6 = LpmV6Key(prefixlen=net.prefixlen)
    k6.addr[:] = list(net.network_address.packed)
    return f"floe_{side}_v6", bytes(k6)


def _entries(rule: Rule) -> list[tuple[str, bytes]]:
    if not isinstance(rule.id, int) or not 1 <= rule.id <= 0xFFFFFFFF:
        raise RuleError(f"rule id {rule.id!r} must be an integer in 1..2^32-1")
    if rule.action not in ("allow", "deny"):
        raise RuleError(f"rule {rule.id}: action must be 'allow' or 'deny', not {rule.action!r}")
    criteria = [name for name in ("src", "dst", "port") if getattr(rule, name) is not None]
    if len(criteria) > 1 or (not criteria and rule.proto is None):
        raise RuleError(f"rule {rule.id}: exactly one of src, dst, port or proto must be set "
                        f"(port may be combined with proto tcp/udp); got {criteria or 'none'}")
    if rule.src is not None:
        if rule.proto is not None:
            raise RuleError(f"rule {rule.id}: src cannot be combined with proto")
        return [_cidr_entry(rule, rule.src, "src")]
    if rule.dst is not None:
        if rule.proto is not None:
            raise RuleError(f"rule {rule.id}: dst cannot be combined with proto")
        return [_cidr_entry(rule, rule.dst, "dst")]
    if rule.port is not None:
        if not isinstance(rule.port, int) or not 0 <= rule.port <= 65535:
            raise RuleError(f"rule {rule.id}: port {rule.port!r} outside 0..65535")
        proto = 0 if rule.proto is None else _proto_number(rule.proto)
        if proto not in (0, 6, 17):
            raise RuleError(f"rule {rule.id}: port rules apply to tcp or udp only")
        if rule.port_dir not in ("dst", "src"):
            raise RuleError(f"rule {rule.id}: port_dir must be 'dst' or 'src'")
        direction = PortDir.DST if rule.port_dir == "dst" else PortDir.SRC
        protos = (6, 17) if proto == 0 else (proto,)  # no proto: one key each, one lookup
        return [("floe_ports", bytes(PortKey(port=rule.port, proto=p, dir=direction)))
                for p in protos]
    assert rule.proto is not None
    return [("floe_protos", bytes(ProtoKey(proto=_proto_number(rule.proto))))]


def rule_entries(ruleset: RuleSet) -> dict[str, dict[bytes, bytes]]:
    """Validated map contents for a rule set: {map name: {key: value}}."""
    out: dict[str, dict[bytes, bytes]] = {name: {} for name in _LIMITS}
    seen_ids: set[int] = set()
    for rule in ruleset.rules:
        if not isinstance(rule, Rule):
            raise RuleError(f"not a Rule: {rule!r}")
        entries = _entries(rule)
        if rule.id in seen_ids:
            raise RuleError(f"duplicate rule id {rule.id}")
        seen_ids.add(rule.id)
        action = Action.ALLOW if rule.action == "allow" else Action.DENY
        for name, key in entries:
            if key in out[name]:
                other = RuleVal.from_buffer_copy(out[name][key]).rule_id
                raise RuleError(f"rule {rule.id} overlaps rule {other} (same match)")
            out[name][key] = bytes(RuleVal(rule_id=rule.id, action=action))
    for name, limit in _LIMITS.items():
        if len(out[name]) > limit:
            raise RuleError(f"too many rules for {name}: {len(out[name])} > {limit}")
    if len(seen_ids) > FLOE_MAX_RULES:
        raise RuleError(f"too many rules: {len(seen_ids)} > {FLOE_MAX_RULES}")
    return out


def rule_maps_mask(entries: dict[str, dict[bytes, bytes]]) -> int:
    """FloeConfig.rule_maps for these map contents: one bit per non-empty rule map."""
    mask = RuleMaps(0)
    for name, bit in (("floe_src_v4", RuleMaps.SRC_V4), ("floe_dst_v4", RuleMaps.DST_V4),
                      ("floe_src_v6", RuleMaps.SRC_V6), ("floe_dst_v6", RuleMaps.DST_V6),
                      ("floe_protos", RuleMaps.PROTO)):
        if entries.get(name):
            mask |= bit
    for key in entries.get("floe_ports", {}):
        mask |= RuleMaps.PORT_DST if PortKey.from_buffer_copy(key).dir == PortDir.DST \
            else RuleMaps.PORT_SRC
    return int(mask)
