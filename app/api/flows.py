"""`GET /flows?limit=&ip=&port=&proto=&node=&interface=&state=&end_reason=&verdict=`: newest
flow records, filtered.

Filters are small predicates combined with AND (a flow matches `ip` / `port` on either end).
`FlowQuery` both documents the parameters (OpenAPI) and parses them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator
from quart import Blueprint, Response
from quart_schema import validate_querystring

from app.api.access import require_scope, visible_nodes
from app.api.envelope import ApiError, ok
from app.ingest import END_REASON_NAMES, FLOW_STATE_NAMES, get_state
from app.ingest.state import VERDICT_NAMES
from app.rulespec import PROTOCOLS

__all__ = ["MAX_LIMIT", "FlowQuery", "bp", "build_filter"]

bp = Blueprint("flows", __name__)

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
VERDICTS = frozenset(VERDICT_NAMES.values())

Predicate = Callable[[dict[str, Any]], bool]


def _int_arg(args: Mapping[str, Any], name: str, default: int | None, low: int,
             high: int) -> int | None:
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


def _ip_arg(args: Mapping[str, Any]) -> str | None:
    raw = args.get("ip")
    if not raw:
        return None
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        raise ApiError(
            422, "validation_error", "ip must be an IP address", {"param": "ip"}
        ) from None


def _proto_arg(args: Mapping[str, Any]) -> int | None:
    raw = args.get("proto")
    if not raw:
        return None
    proto = PROTOCOLS.get(raw.lower())
    return proto if proto is not None else _int_arg(args, "proto", None, 0, 255)


def _choices(args: Mapping[str, Any], name: str, allowed: frozenset[str]) -> frozenset[str]:
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


def _list_schema(allowed: frozenset[str]) -> WithJsonSchema:
    """A comma-separated list in the query (`style: form, explode: false`)."""
    return WithJsonSchema({"type": "array", "minItems": 1, "style": "form", "explode": False,
                           "items": {"type": "string", "enum": sorted(allowed)}})


_PROTO_SCHEMA = WithJsonSchema({"anyOf": [
    {"type": "string", "enum": sorted(PROTOCOLS)},
    {"type": "integer", "minimum": 0, "maximum": 255},
]})
_IP_SCHEMA = WithJsonSchema({"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]})


class FlowQuery(BaseModel):
    """The parameters of GET /flows: every filter optional, all of them ANDed.

    Parsing is the hand-written one /flows always had (`_parse`): a bad value is a 422 whose
    details name the parameter, `{"param": name}`; an empty value is the same as none; an
    unknown parameter is ignored. It raises ApiError, which pydantic lets through unchanged.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT,
                       description="How many of the newest matching flows")
    ip: Annotated[str | None, _IP_SCHEMA] = Field(
        None, description="An IPv4 or IPv6 address at either end")
    port: int | None = Field(None, ge=0, le=65535, description="A port at either end")
    proto: Annotated[int | None, _PROTO_SCHEMA] = Field(
        None, description="IP protocol: a name (any case) or a number")
    node: str | None = Field(None, description="The dataplane's node id")
    interface: str | None = Field(None, description="The interface name on that node")
    state: Annotated[frozenset[str] | None, _list_schema(FLOW_STATE_NAMES)] = Field(
        None, description="Any of these flow states (comma-separated, any case)")
    end_reason: Annotated[frozenset[str] | None, _list_schema(END_REASON_NAMES)] = Field(
        None, description="Any of these end reasons (comma-separated, any case)")
    verdict: Annotated[frozenset[str] | None, _list_schema(VERDICTS)] = Field(
        None, description="Any of these verdicts: dropped flows carry the rule that dropped "
        "them (rule_id)")

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, raw: Any) -> dict[str, Any]:
        # quart-schema hands a repeated parameter over as a list: the first one counts.
        args = {k: v[0] if isinstance(v, list) and v else v for k, v in dict(raw).items()}
        return {
            "limit": _int_arg(args, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
            "ip": _ip_arg(args),
            "port": _int_arg(args, "port", None, 0, 65535),
            "proto": _proto_arg(args),
            "node": args.get("node") or None,
            "interface": args.get("interface") or None,
            "state": _choices(args, "state", FLOW_STATE_NAMES) or None,
            "end_reason": _choices(args, "end_reason", END_REASON_NAMES) or None,
            "verdict": _choices(args, "verdict", VERDICTS) or None,
        }

    def predicates(self) -> list[Predicate]:
        predicates: list[Predicate] = []
        if self.ip is not None:
            wanted = self.ip
            predicates.append(lambda flow: wanted in (flow["src"], flow["dst"]))
        if self.port is not None:
            port = self.port
            predicates.append(lambda flow: port in (flow["src_port"], flow["dst_port"]))
        if self.proto is not None:
            proto = self.proto
            predicates.append(lambda flow: flow["proto"] == proto)
        for name in ("node_id", "interface"):
            value = self.node if name == "node_id" else self.interface
            if value is not None:
                predicates.append(_field_in(name, frozenset({value})))
        for name, values in (("state", self.state), ("end_reason", self.end_reason),
                             ("verdict", self.verdict)):
            if values:
                predicates.append(_field_in(name, values))
        return predicates


def build_filter(args: Mapping[str, Any]) -> list[Predicate]:
    """Turn query arguments into predicates; raises ApiError(422) on a bad value."""
    return FlowQuery.model_validate(args).predicates()


def _field_in(name: str, values: frozenset[str]) -> Predicate:
    return lambda flow: flow[name] in values


@bp.get("/flows")
@require_scope("flows:read", per_node=True)
@validate_querystring(FlowQuery)
async def list_flows(query_args: FlowQuery) -> Response:
    predicates = query_args.predicates()
    allowed = await visible_nodes("flows:read")
    if allowed is not None:
        predicates.append(lambda flow: flow["node_id"] in allowed)

    def matches(flow: dict[str, Any]) -> bool:
        return all(predicate(flow) for predicate in predicates)

    limit = query_args.limit
    flows = get_state().recent_flows(limit, matches if predicates else None)
    return ok(flows, meta={"count": len(flows), "limit": limit})
