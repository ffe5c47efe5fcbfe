"""/clients: API keys with selected scopes, shown once, expiring, rotatable, revocable.

clients:write manages the caller's own keys; clients:admin manages every key.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field
from quart import Blueprint, Response
from quart_schema import validate_querystring, validate_request

from app.api.access import require_principal, require_scope
from app.api.envelope import ApiError, ok
from app.api.openapi import answers
from app.identity import get_identity, store
from app.identity.records import ApiKeyRecord
from app.identity.web import Page, ScopeName, StrictModel, client_ip, key_json, page_meta
from app.types import Principal

__all__ = ["bp"]

bp = Blueprint("clients", __name__)


class CreateClientBody(StrictModel):
    name: str = Field(min_length=1, max_length=128, strict=True)
    scopes: list[ScopeName] = Field(min_length=1, max_length=128)
    expires_at: datetime | None = None


class ClientQuery(Page):
    name: str | None = Field(default=None, max_length=128)
    include_revoked: bool = False
    mine: bool = False


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


async def _owned(key_id: int, principal: Principal) -> ApiKeyRecord:
    key: ApiKeyRecord | None = await get_identity().db.run(
        lambda dal: store.api_key_by_id(dal, key_id)
    )
    if key is None:
        raise ApiError(404, "not_found", "API key not found")
    if not principal.has("clients:admin") and (
        principal.user_id is None or key.owner_user_id != principal.user_id
    ):
        raise ApiError(
            403, "insufficient_scope", "Only the key's owner or clients:admin may do this"
        )
    return key


@bp.get("/clients")
@require_scope("clients:read")
@validate_querystring(ClientQuery)
async def list_clients(query_args: ClientQuery) -> Response:
    principal = await require_principal()
    q = query_args
    owner = principal.user_id if (q.mine or not principal.has("clients:admin")) else None
    if owner is None and not principal.has("clients:admin"):
        return ok([], meta=page_meta(q, 0))
    keys, total = await get_identity().db.run(
        lambda dal: store.list_api_keys(
            dal,
            owner_user_id=owner,
            name=q.name,
            include_revoked=q.include_revoked,
            offset=q.offset,
            limit=q.limit,
        )
    )
    return ok([key_json(key) for key in keys], meta=page_meta(q, total))


@bp.post("/clients")
@answers(201, {
    403: "`scope_escalation`: scopes the creator lacks",
    422: "`unknown_scope` or `invalid_expiry`",
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
    )
    return ok({**key_json(record), "api_key": plain}, status=201)


@bp.get("/clients/<int:key_id>")
@answers(errors={403: "`insufficient_scope`: only the key's owner or clients:admin"})
@require_scope("clients:read")
async def get_client(key_id: int) -> Response:
    principal = await require_principal()
    return ok(key_json(await _owned(key_id, principal)))


@bp.post("/clients/<int:key_id>/rotate")
@answers(201, {403: "`insufficient_scope`: only the key's owner or clients:admin"})
@require_scope("clients:write")
async def rotate_client(key_id: int) -> Response:
    principal = await require_principal()
    await _owned(key_id, principal)
    record, plain = await get_identity().rotate_api_key(key_id, actor=principal, ip=client_ip())
    return ok({**key_json(record), "api_key": plain}, status=201)


@bp.delete("/clients/<int:key_id>")
@answers(errors={403: "`insufficient_scope`: only the key's owner or clients:admin"})
@require_scope("clients:write")
async def revoke_client(key_id: int) -> Response:
    principal = await require_principal()
    await _owned(key_id, principal)
    await get_identity().revoke_api_key(key_id, actor=principal, ip=client_ip())
    return ok({"revoked": True})
