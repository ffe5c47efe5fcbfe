"""/clients: API keys with selected scopes, shown once, expiring, rotatable, revocable.

clients:write manages the caller's own keys; clients:admin manages every key. Either way a
caller reaches only keys whose scopes its own cover (the identity policy decides).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field
from quart import Blueprint, Response
from quart_schema import validate_querystring, validate_request

from app.api.access import require_principal, require_scope
from app.api.envelope import ok
from app.api.openapi import answers
from app.identity import get_identity
from app.identity.web import Page, ScopeName, StrictModel, client_ip, key_json, page_meta

__all__ = ["bp"]

bp = Blueprint("clients", __name__)


class CreateClientBody(StrictModel):
    name: str = Field(min_length=1, max_length=128, strict=True)
    scopes: list[ScopeName] = Field(min_length=1, max_length=128)
    expires_at: datetime | None = None
    # Required with dataplane:write: the node id (or `*` pattern) the key may claim.
    node_id: str | None = Field(default=None, min_length=1, max_length=128, strict=True)


class ClientQuery(Page):
    name: str | None = Field(default=None, max_length=128)
    include_revoked: bool = False
    mine: bool = False


_REACH = ("`not_owner`: another user's key without clients:admin; `target_outranks_caller`: the "
          "key holds scopes the caller lacks")


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


@bp.get("/clients")
@require_scope("clients:read")
@validate_querystring(ClientQuery)
async def list_clients(query_args: ClientQuery) -> Response:
    principal = await require_principal()
    q = query_args
    keys, total = await get_identity().list_api_keys(
        actor=principal,
        mine=q.mine,
        name=q.name,
        include_revoked=q.include_revoked,
        offset=q.offset,
        limit=q.limit,
    )
    return ok([key_json(key) for key in keys], meta=page_meta(q, total))


@bp.post("/clients")
@answers(201, {
    403: "`scope_escalation`: scopes the creator lacks",
    409: "`key_limit`: the user owns 100 live keys",
    422: "`unknown_scope`, `invalid_expiry`, `node_id_required` (dataplane:write without "
         "node_id) or `node_id_unused`",
})
@require_scope("clients:write")
@validate_request(CreateClientBody)
async def create_client(data: CreateClientBody) -> Response:
    principal = await require_principal()
    record, plain = await get_identity().create_api_key(
        data.name,
        list(data.scopes),
        _naive_utc(data.expires_at),
        actor=principal,
        ip=client_ip(),
        owner_user_id=principal.user_id,
        node_id=data.node_id,
    )
    return ok({**key_json(record), "api_key": plain}, status=201)


@bp.get("/clients/<int:key_id>")
@answers(errors={403: _REACH})
@require_scope("clients:read")
async def get_client(key_id: int) -> Response:
    principal = await require_principal()
    return ok(key_json(await get_identity().get_api_key(key_id, actor=principal)))


@bp.post("/clients/<int:key_id>/rotate")
@answers(201, {403: _REACH})
@require_scope("clients:write")
async def rotate_client(key_id: int) -> Response:
    principal = await require_principal()
    record, plain = await get_identity().rotate_api_key(key_id, actor=principal, ip=client_ip())
    return ok({**key_json(record), "api_key": plain}, status=201)


@bp.delete("/clients/<int:key_id>")
@answers(errors={403: _REACH})
@require_scope("clients:write")
async def revoke_client(key_id: int) -> Response:
    principal = await require_principal()
    await get_identity().revoke_api_key(key_id, actor=principal, ip=client_ip())
    return ok({"revoked": True})
