"""/rules: the filter rule set pushed to every dataplane's XDP maps (xdp-filter's allow/deny
by CIDR, port and protocol, with per-rule hit counters shown in /stats/summary)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response
from quart_schema import validate_request

from app.api.access import current_principal, require_scope
from app.api.envelope import ApiError, ok
from app.api.openapi import answers
from app.identity.web import client_ip
from app.ingest import get_rule_store
from app.ingest.rules import FilterRuleSet, Rule, RuleSpecError, rule_json
from app.rulespec import MAX_RULES

__all__ = ["bp"]

bp = Blueprint("rules", __name__)


class RuleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int = Field(ge=1, le=2**31 - 1)
    action: Literal["allow", "deny"]
    src: str | None = Field(default=None, max_length=64)
    dst: str | None = Field(default=None, max_length=64)
    port: int | None = Field(default=None, ge=0, le=65535)
    proto: str | None = Field(default=None, max_length=8)
    direction: Literal["src", "dst"] = "dst"


class RuleSetBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default_action: Literal["allow", "deny"] = "allow"
    rules: list[RuleBody] = Field(default_factory=list, max_length=MAX_RULES)


def _json(rule_set: FilterRuleSet) -> dict[str, object]:
    return {"generation": rule_set.generation, "default_action": rule_set.default_action,
            "rules": [rule_json(rule) for rule in rule_set.rules]}


@bp.get("/rules")
@require_scope("rules:read")
async def get_rules() -> Response:
    return ok(_json(get_rule_store().current()))


@bp.put("/rules")
@answers(errors={422: "`invalid_rule`: the dataplane's own checks (app/rulespec.py)"})
@require_scope("rules:write")
@validate_request(RuleSetBody)
async def put_rules(data: RuleSetBody) -> Response:
    """Replace the whole rule set: committed to the database first, then pushed; dataplanes
    apply it within one tick and acknowledge (see /nodes)."""
    rules = [Rule(**rule.model_dump()) for rule in data.rules]
    try:
        rule_set = await get_rule_store().replace(data.default_action, rules,
                                                  await current_principal(), client_ip())
    except RuleSpecError as error:
        raise ApiError(422, "invalid_rule", str(error)) from None
    return ok(_json(rule_set))
