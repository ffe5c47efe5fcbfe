"""Filter rules translated into BPF map entries.

What a rule may say, and every check, is `app.rulespec` (shared with the control plane);
this module turns its normalised match keys into the maps' key structs. Verdict semantics
live in bpf/floe_xdp.c: any matching deny drops, else any matching allow passes, else the
default action.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.rulespec import LIMITS, PROTOCOLS, Rule, RuleSpecError, check_rules
from dataplane.bpf.errors import RuleError
from dataplane.bpf.layout import (
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

RULE_MAPS = tuple(LIMITS)  # names of the rule maps


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


def _key_bytes(name: str, key: tuple[int, ...]) -> bytes:
    """A normalised match key (app.rulespec) as the map's key struct."""
    if name in ("floe_src_v4", "floe_dst_v4"):
        k4 = LpmV4Key(prefixlen=key[1])
        k4.addr[:] = list(key[0].to_bytes(4, "big"))
        return bytes(k4)
    if name in ("floe_src_v6", "floe_dst_v6"):
        k6 = LpmV6Key(prefixlen=key[1])
        k6.addr[:] = list(key[0].to_bytes(16, "big"))
        return bytes(k6)
    if name == "floe_ports":
        return bytes(PortKey(port=key[0], proto=key[1], dir=key[2]))
    return bytes(ProtoKey(proto=key[0]))


def rule_entries(ruleset: RuleSet) -> dict[str, dict[bytes, bytes]]:
    """Validated map contents for a rule set: {map name: {key: value}}.

    The checks are app.rulespec's, the same the control plane applies before it stores a set.
    """
    try:
        keyed = check_rules(ruleset.rules)
    except RuleSpecError as error:
        raise RuleError(str(error)) from error
    return {
        name: {_key_bytes(name, key): bytes(RuleVal(
            rule_id=rule.id, action=Action.ALLOW if rule.action == "allow" else Action.DENY))
            for key, rule in entries.items()}
        for name, entries in keyed.items()
    }


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
