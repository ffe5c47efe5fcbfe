"""Filter rule sets as the control plane holds them, and their wire form for dataplanes.

The database holds every generation (`app.ingest.rule_store`); the newest is kept in the
ingest service and pushed to every connected dataplane (and to each one that connects
later); each dataplane acknowledges the generation it applied into its XDP maps, shown per
node in `GET /api/v2/nodes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from app.rulespec import Rule, RuleSpecError, check_rules, protocol_number
from floe.dataplane.v1 import uplink_pb2 as pb

__all__ = ["FilterRuleSet", "Rule", "RuleSpecError", "rule_json", "to_proto"]


@dataclass(slots=True)
class FilterRuleSet:
    generation: int = 0
    default_action: Literal["allow", "deny"] = "allow"
    rules: list[Rule] = field(default_factory=list)


def rule_json(rule: Rule) -> dict[str, object]:
    """The one JSON form of a rule (REST answers and the stored copy): unset fields left out."""
    fields = {"id": rule.id, "action": rule.action, "src": rule.src, "dst": rule.dst,
              "port": rule.port, "proto": rule.proto,
              "direction": rule.direction if rule.port is not None else None}
    return {k: v for k, v in fields.items() if v is not None}


def _rule(rule: Rule) -> pb.Rule:
    action = pb.ACTION_DENY if rule.action == "deny" else pb.ACTION_ALLOW
    if rule.src is not None or rule.dst is not None:  # check_rules has parsed it already
        cidr = str(rule.src if rule.src is not None else rule.dst)
        direction = pb.DIRECTION_SRC if rule.src is not None else pb.DIRECTION_DST
        return pb.Rule(id=rule.id, action=action,
                       cidr=pb.CidrMatch(cidr=cidr, direction=direction))
    if rule.port is not None:
        proto = protocol_number(rule.proto) if rule.proto else 0
        direction = pb.DIRECTION_SRC if rule.direction == "src" else pb.DIRECTION_DST
        return pb.Rule(id=rule.id, action=action,
                       port=pb.PortMatch(port=rule.port, protocol=proto, direction=direction))
    assert rule.proto is not None
    return pb.Rule(id=rule.id, action=action, protocol=protocol_number(rule.proto))


def to_proto(rule_set: FilterRuleSet) -> pb.RuleSet:
    """The wire form; raises RuleSpecError for anything the dataplane's maps would refuse."""
    check_rules(rule_set.rules)
    default = pb.ACTION_DENY if rule_set.default_action == "deny" else pb.ACTION_ALLOW
    return pb.RuleSet(generation=rule_set.generation, default_action=default,
                      rules=[_rule(rule) for rule in rule_set.rules])
