"""Filter rules: what a rule may say, checked the same way by both processes.

Why one module: the control plane accepts rule sets (`PUT /api/v2/rules`, stored and
acknowledged) and the dataplane writes them into XDP maps. With two sets of checks the
control plane accepted what the dataplane then refused (overlapping matches, `src` + `proto`
silently turned into a plain CIDR rule, too many rules, protocol names it did not know). This
module has no dependencies, so the control plane imports it without the BPF loader; the
dataplane turns its normalised match keys into map bytes (`dataplane.bpf.rules`).

A rule has ONE match criterion — a source CIDR, a destination CIDR, a protocol, or a port
(TCP, UDP or both; destination or source) — so each lands in exactly one map key and the
kernel stays a handful of lookups.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "LIMITS",
    "MAX_RULES",
    "PROTOCOLS",
    "MatchKey",
    "Rule",
    "RuleSpecError",
    "check_rules",
    "match_keys",
    "protocol_number",
]

PROTOCOLS: dict[str, int] = {"icmp": 1, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "icmpv6": 58,
                             "sctp": 132}

# Map capacities: equal to FLOE_MAX_* in bpf/floe_kern_user.h (tests/unit/bpf/test_layout_btf.py).
MAX_RULES = 32768
LIMITS: dict[str, int] = {"floe_src_v4": 16384, "floe_dst_v4": 16384, "floe_src_v6": 16384,
                          "floe_dst_v6": 16384, "floe_ports": 4096, "floe_protos": 256}

PORT_DIRS = {"dst": 0, "src": 1}  # enum floe_port_dir

MatchKey = tuple[str, tuple[int, ...]]  # (rule map, normalised key)


class RuleSpecError(ValueError):
    """A rule (or rule set) the XDP maps cannot hold."""


@dataclass(slots=True, frozen=True)
class Rule:
    """One filter rule. Set exactly one of src / dst / port / proto (port may add proto)."""

    id: int
    action: Literal["allow", "deny"]
    src: str | None = None
    dst: str | None = None
    proto: str | int | None = None
    port: int | None = None
    direction: Literal["dst", "src"] = "dst"  # which port a port rule matches


def protocol_number(proto: str | int) -> int:
    """IP protocol number of a name from PROTOCOLS or a number 0..255 (int or digits)."""
    if isinstance(proto, str):
        if proto.lower() in PROTOCOLS:
            return PROTOCOLS[proto.lower()]
        if not proto.isdigit():
            raise RuleSpecError(f"unknown protocol {proto!r}")
        proto = int(proto)
    if not 0 <= proto <= 255:
        raise RuleSpecError(f"protocol {proto} outside 0..255")
    return proto


def _cidr_key(rule: Rule, cidr: str, side: str) -> MatchKey:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError as error:
        raise RuleSpecError(f"rule {rule.id}: bad CIDR {cidr!r}: {error}") from error
    family = "v4" if net.version == 4 else "v6"
    return f"floe_{side}_{family}", (int(net.network_address), net.prefixlen)


def match_keys(rule: Rule) -> list[MatchKey]:
    """The map keys `rule` occupies (a port rule without a protocol takes one per TCP/UDP)."""
    if not isinstance(rule.id, int) or not 1 <= rule.id <= 0xFFFFFFFF:
        raise RuleSpecError(f"rule id {rule.id!r} must be an integer in 1..2^32-1")
    if rule.action not in ("allow", "deny"):
        raise RuleSpecError(f"rule {rule.id}: action must be 'allow' or 'deny', "
                            f"not {rule.action!r}")
    criteria = [name for name in ("src", "dst", "port") if getattr(rule, name) is not None]
    if len(criteria) > 1 or (not criteria and rule.proto is None):
        raise RuleSpecError(f"rule {rule.id}: exactly one of src, dst, port or proto must be set "
                            f"(port may be combined with proto tcp/udp); got {criteria or 'none'}")
    for side in ("src", "dst"):
        cidr = getattr(rule, side)
        if cidr is not None:
            if rule.proto is not None:
                raise RuleSpecError(f"rule {rule.id}: {side} cannot be combined with proto")
            return [_cidr_key(rule, cidr, side)]
    if rule.port is not None:
        if not isinstance(rule.port, int) or not 0 <= rule.port <= 65535:
            raise RuleSpecError(f"rule {rule.id}: port {rule.port!r} outside 0..65535")
        proto = 0 if rule.proto is None else protocol_number(rule.proto)
        if proto not in (0, 6, 17):
            raise RuleSpecError(f"rule {rule.id}: port rules apply to tcp or udp only")
        if rule.direction not in PORT_DIRS:
            raise RuleSpecError(f"rule {rule.id}: port direction must be 'dst' or 'src'")
        protos = (6, 17) if proto == 0 else (proto,)  # no proto: one key each, one lookup
        return [("floe_ports", (rule.port, p, PORT_DIRS[rule.direction])) for p in protos]
    assert rule.proto is not None
    return [("floe_protos", (protocol_number(rule.proto),))]


def check_rules(rules: Iterable[Rule]) -> dict[str, dict[tuple[int, ...], Rule]]:
    """Every rule checked, ids unique, no two rules on one key, map capacities respected.

    Returns {map name: {normalised key: rule}} for every map in LIMITS.
    """
    out: dict[str, dict[tuple[int, ...], Rule]] = {name: {} for name in LIMITS}
    ids: set[int] = set()
    for rule in rules:
        if not isinstance(rule, Rule):
            raise RuleSpecError(f"not a Rule: {rule!r}")
        keys = match_keys(rule)
        if rule.id in ids:
            raise RuleSpecError(f"duplicate rule id {rule.id}")
        ids.add(rule.id)
        for name, key in keys:
            other = out[name].get(key)
            if other is not None:
                raise RuleSpecError(f"rule {rule.id} overlaps rule {other.id} (same match)")
            out[name][key] = rule
    for name, limit in LIMITS.items():
        if len(out[name]) > limit:
            raise RuleSpecError(f"too many rules for {name}: {len(out[name])} > {limit}")
    if len(ids) > MAX_RULES:
        raise RuleSpecError(f"too many rules: {len(ids)} > {MAX_RULES}")
    return out
