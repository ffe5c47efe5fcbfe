"""/users: user management (users:read / users:write / users:admin) and resource grants."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints
from quart import Blueprint, Response
from quart_schema import validate_querystring, validate_request

from app.api.access import require_principal, require_scope
from app.api.envelope import ok
from app.api.openapi import answers
from app.identity import get_identity, store
from app.identity.web import (
    Email,
    Name,
    Page,
    Password,
    StrictModel,
    client_ip,
    page_meta,
    user_json,
)

__all__ = ["bp"]

bp = Blueprint("users", __name__)

RoleName = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=80)]


class CreateUserBody(StrictModel):
    email: Email
    password: Password
    roles: list[RoleName] = Field(default_factory=lambda: ["viewer"], max_length=32)
    display_name: str | None = Field(default=None, max_length=128, strict=True)


class UpdateUserBody(StrictModel):
    display_name: str | None = Field(default=None, max_length=128, strict=True)
    active: bool | None = Field(default=None, strict=True)
    roles: list[RoleName] | None = Field(default=None, max_length=32)
    password: Password | None = None


class UserQuery(Page):
    email: str | None = Field(default=None, max_length=255)
    active: bool | None = None
    role: str | None = Field(default=None, max_length=80)


class GrantBody(StrictModel):
    role: Name
    # What a grant can name: "node" (a dataplane's node id). Exact and lower-case, so the
    # same grant means the same on every database (MariaDB compares case-insensitively).
    resource_type: Literal["node"]
    resource_id: str = Field(min_length=1, max_length=128, strict=True)


@bp.get("/users")
@require_scope("users:read")
@validate_querystring(UserQuery)
async def list_users(query_args: UserQuery) -> Response:
    q = query_args
    users, total = await get_identity().db.run(
        lambda dal: store.list_users(
            dal, email=q.email, active=q.active, role=q.role, offset=q.offset, limit=q.limit
        )
    )
    return ok([user_json(user) for user in users], meta=page_meta(q, total))


@bp.post("/users")
@answers(201, {
    403: "`scope_escalation`: roles beyond the caller's scopes",
    409: "`conflict`: the email is taken",
    422: "`unknown_role`",
})
@require_scope("users:write")
@validate_request(CreateUserBody)
async def create_user(data: CreateUserBody) -> Response:
    principal = await require_principal()
    user = await get_identity().create_user(
        data.email,
        data.password,
        list(data.roles),
        actor=principal,
        ip=client_ip(),
        display_name=data.display_name,
    )
    return ok(user_json(user), status=201)


@bp.get("/users/<int:user_id>")
@require_scope("users:read")
async def get_user(user_id: int) -> Response:
    return ok(user_json(await get_identity().get_user(user_id)))


@bp.patch("/users/<int:user_id>")
@answers(errors={
    403: "`target_outranks_caller`: the user holds scopes the caller lacks; "
         "`scope_escalation`: roles beyond the caller's scopes",
    422: "`unknown_role`",
})
@require_scope("users:write")
@validate_request(UpdateUserBody)
async def update_user(user_id: int, data: UpdateUserBody) -> Response:
    principal = await require_principal()
    user = await get_identity().update_user(
        user_id,
        actor=principal,
        ip=client_ip(),
        display_name=data.display_name,
        active=data.active,
        roles=list(data.roles) if data.roles is not None else None,
        password=data.password,
    )
    return ok(user_json(user))


@bp.delete("/users/<int:user_id>")
@answers(errors={403: "`target_outranks_caller`: the user holds scopes the caller lacks",
                 409: "`self_delete`: not your own account"})
@require_scope("users:admin")
async def delete_user(user_id: int) -> Response:
    principal = await require_principal()
    await get_identity().delete_user(user_id, actor=principal, ip=client_ip())
    return ok({"deleted": True})


@bp.get("/users/<int:user_id>/grants")
@require_scope("users:read")
async def list_grants(user_id: int) -> Response:
    return ok(await get_identity().list_grants(user_id))


@bp.post("/users/<int:user_id>/grants")
@answers(201, {
    403: "`target_outranks_caller` or `scope_escalation`",
    409: "`conflict`: the grant exists",
    422: "`unknown_role`: not a resource-level role",
})
@require_scope("users:write")
@validate_request(GrantBody)
async def add_grant(user_id: int, data: GrantBody) -> Response:
    principal = await require_principal()
    grant_id = await get_identity().add_grant(
        user_id, data.role, data.resource_type, data.resource_id, actor=principal, ip=client_ip()
    )
    return ok({"id": grant_id}, status=201)


@bp.delete("/users/<int:user_id>/grants/<int:grant_id>")
@require_scope("users:write")
async def remove_grant(user_id: int, grant_id: int) -> Response:
    principal = await require_principal()
    await get_identity().remove_grant(user_id, grant_id, actor=principal, ip=client_ip())
    return ok({"deleted": True})
