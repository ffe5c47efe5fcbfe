"""`GET /flows?limit=&ip=&port=&proto=&node=&interface=&state=&end_reason=`: newest flow
records, filtered.

Filters are small predicates combined with AND (a flow matches `ip` / `port` on either end).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from quart import Blueprint, Response, request

from app.api.access import require_scope, visible_nodes
from app.api.envelope import ApiError, ok
from app.ingest import END_REASON_NAMES, FLOW_STATE_NAMES, get_state
from app.rulespec import PROTOCOLS

__all__ = ["MAX_LIMIT", "bp", "build_filter"]

bp = Blueprint("flows", __name__)

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

Predicate = Callable[[dict[str, Any]], bool]


def _int_arg(args: Any, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(
            422, "validation_error", f"{name} must be an integer", {"param": name}
        ) from None
    if not low <= value <= high:
        raise ApiError(
            422, "validation_error", f"{name} must be between {low} and {high}", {"param": name}
        )
    return value


def build_filter(args: Any) -> list[Predicate]:
    """Turn query arguments into predicates; raises ApiError(422) on a bad value."""
    predicates: list[Predicate] = []
    ip = args.get("ip")
    if ip:
        try:
            wanted = str(ipaddress.ip_address(ip))
        except ValueError:
            raise ApiError(
                422, "validation_error", "ip must be an IP address", {"param": "ip"}
            ) from None
        predicates.append(lambda flow: wanted in (flow["src"], flow["dst"]))
    port = _int_arg(args, "port", None, 0, 65535)
    if port is not None:
        predicates.append(lambda flow: port in (flow["src_port"], flow["dst_port"]))
    proto_raw = args.get("proto")
    if proto_raw:
        proto = PROTOCOLS.get(proto_raw.lower())
        if proto is None:
            proto = _int_arg(args, "proto", None, 0, 255)
        predicates.append(lambda flow: flow["proto"] == proto)
    node = args.get("node")
    if node:
        predicates.append(lambda flow: flow["node_id"] == node)
    interface = args.get("interface")
    if interface:
        predicates.append(lambda flow: flow["interface"] == interface)
    for name, allowed in (("state", FLOW_STATE_NAMES), ("end_reason", END_REASON_NAMES)):
        wanted_values = _choices(args, name, allowed)
        if wanted_values:
            predicates.append(_field_in(name, wanted_values))
    return predicates


def _field_in(name: str, values: frozenset[str]) -> Predicate:
    return lambda flow: flow[name] in values



def _choices(args: Any, name: str, allowed: frozenset[str]) -> frozenset[str]:
    """A comma-separated list of allowed values (`state=new,established`); 422 otherwise."""
    raw = args.get(name)
    if not raw:
        return frozenset()
    values = frozenset(v.strip().lower() for v in raw.split(",") if v.strip())
    unknown = values - allowed
    if unknown or not values:
        raise ApiError(422, "validation_error",
                       f"{name} must be one or more of {', '.join(sorted(allowed))}",
                       {"param": name})
    return values


@bp.get("/flows")
@require_scope("flows:read", per_node=True)
async def list_flows() -> Response:
    limit = _int_arg(request.args, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    predicates = build_filter(request.args)
    allowed = await visible_nodes("flows:read")
    if allowed is not None:
        predicates.append(lambda flow: flow["node_id"] in allowed)

    def matches(flow: dict[str, Any]) -> bool:
        return all(predicate(flow) for predicate in predicates)

    flows = get_state().recent_flows(limit or DEFAULT_LIMIT, matches if predicates else None)
    return ok(flows, meta={"count": len(flows), "limit": limit})
