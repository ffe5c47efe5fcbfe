"""`GET /audit`: the audit log, newest first — who changed users, roles, grants, keys and the
rule set, who logged in or failed to, and from where."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

from pydantic import Field
from quart import Blueprint, Response
from quart_schema import validate_querystring

from app.api.access import require_scope
from app.api.envelope import ApiError, ok
from app.db.audit import list_audit
from app.identity import get_identity
from app.identity.web import Page, page_meta

__all__ = ["bp"]

bp = Blueprint("audit", __name__)


class AuditQuery(Page):
    action: str | None = Field(default=None, min_length=1, max_length=64)
    actor_user_id: int | None = Field(default=None, ge=1)
    target: str | None = Field(default=None, min_length=1, max_length=255)
    since: dt.datetime | None = None  # ISO 8601; naive means UTC


@bp.get("/audit")
@require_scope("audit:read")
@validate_querystring(AuditQuery)
async def list_entries(query_args: AuditQuery) -> Response:
    q = query_args
    since = q.since
    if since is not None and since.tzinfo is not None:
        try:
            since = since.astimezone(dt.UTC).replace(tzinfo=None)  # the column is naive UTC
        except OverflowError:
            raise ApiError(422, "validation_error", "since is outside the representable range",
                           {"param": "since"}) from None
    entries, total = await get_identity().db.run(
        lambda dal: list_audit(dal, action=q.action, actor_user_id=q.actor_user_id,
                               target=q.target, since=since, offset=q.offset, limit=q.limit)
    )
    return ok([asdict(entry) for entry in entries], meta=page_meta(q, total))
