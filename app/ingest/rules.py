"""Filter rule sets as the control plane holds them, and their wire form for dataplanes.

The database holds every generation (`app.ingest.rule_store`); the newest is kept in the
ingest service and pushed to every connected dataplane (and to each one that connects
later); each dataplane acknowledges the generation it applied into its XDP maps, shown per
node in `GET /api/v2/nodes`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from floe.dataplane.v1 import uplink_pb2 as pb

__all__ = ["PROTOCOLS", "FilterRule", "FilterRuleSet", "RuleSpecError", "to_proto"]

PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}


class RuleSpecError(ValueError):
    """A rule that cannot be expressed in the XDP maps."""


@dataclass(slots=True, frozen=True)
class FilterRule:
    id: int
    action: Literal["allow", "deny"]
    src: str | None = None
    dst: str | None = None
    port: int | None = None
    proto: str | None = None
    direction: Literal["src", "dst"] = "dst"


@dataclass(slots=True)
class FilterRuleSet:
    generation: int = 0
    default_action: Literal["allow", "deny"] = "allow"
    rules: list[FilterRule] = field(default_factory=list)


def _proto_number(name: str) -> int:
    if name.lower() in PROTOCOLS:
        return PROTOCOLS[name.lower()]
    if name.isdigit() and 0 <= int(name) <= 255:
        return int(name)
    raise RuleSpecError(f"unknown protocol {name!r}")


def _rule(rule: FilterRule) -> pb.Rule:
    action = pb.ACTION_DENY if rule.action == "deny" else pb.ACTION_ALLOW
    chosen = [name for name in ("src", "dst", "port") if getattr(rule, name) is not None]
    if len(chosen) > 1:
        raise RuleSpecError(f"rule {rule.id}: set one of src, dst, port (got {', '.join(chosen)})")
    if rule.src is not None or rule.dst is not None:
        cidr = rule.src if rule.src is not None else rule.dst
        try:
            network = ipaddress.ip_network(str(cidr), strict=False)
        except ValueError as error:
            raise RuleSpecError(f"rule {rule.id}: {error}") from None
        direction = pb.DIRECTION_SRC if rule.src is not None else pb.DIRECTION_DST
        return pb.Rule(id=rule.id, action=action,
                       cidr=pb.CidrMatch(cidr=str(network), direction=direction))
    if rule.port is not None:
        proto = _proto_number(rule.proto) if rule.proto else 0
        if proto not in (0, 6, 17):
            raise RuleSpecError(f"rule {rule.id}: port rules apply to tcp or udp")
        direction = pb.DIRECTION_SRC if rule.direction == "src" else pb.DIRECTION_DST
        return pb.Rule(id=rule.id, action=action,
                       port=pb.PortMatch(port=rule.port, protocol=proto, direction=direction))
    if rule.proto is not None:
        return pb.Rule(id=rule.id, action=action, protocol=_proto_number(rule.proto))
    raise RuleSpecError(f"rule {rule.id}: set one of src, dst, port, proto")


def to_proto(rule_set: FilterRuleSet) -> pb.RuleSet:
    ids = [rule.id for rule in rule_set.rules]
    if len(ids) != len(set(ids)):
        raise RuleSpecError("rule ids must be unique")
    default = pb.ACTION_DENY if rule_set.default_action == "deny" else pb.ACTION_ALLOW
    return pb.RuleSet(generation=rule_set.generation, default_action=default,
                      rules=[_rule(rule) for rule in rule_set.rules])
