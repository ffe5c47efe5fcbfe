"""/roles: built-in and custom roles with their scopes; `/roles/scopes` is the catalogue."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints
from quart import Blueprint, Response
from quart_schema import validate_querystring, validate_request

from app.api.access import require_principal, require_scope
from app.api.envelope import ApiError, ok
from app.api.openapi import answers
from app.identity import get_identity, store
from app.identity.scopes import BUILTIN_ROLES, RESOURCES
from app.identity.web import Page, ScopeName, StrictModel, client_ip, page_meta, role_json

__all__ = ["bp"]

bp = Blueprint("roles", __name__)

RoleNameStr = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.-]+$")
]


class CreateRoleBody(StrictModel):
    name: RoleNameStr
    description: str = Field(default="", max_length=255, strict=True)
    scopes: list[ScopeName] = Field(max_length=128)
    level: Literal["global", "team", "resource"] = "global"


class UpdateRoleBody(StrictModel):
    description: str | None = Field(default=None, max_length=255, strict=True)
    scopes: list[ScopeName] | None = Field(default=None, max_length=128)


class RoleQuery(Page):
    level: Literal["global", "team", "resource"] | None = None


@bp.get("/roles/scopes")
@require_scope("roles:read")
async def scope_catalogue() -> Response:
    return ok(
        {
            "resources": {name: list(levels) for name, levels in RESOURCES.items()},
            "builtin_roles": {
                role.name: {"level": role.level, "scopes": sorted(role.scopes)}
                for role in BUILTIN_ROLES
            },
        }
    )


@bp.get("/roles")
@require_scope("roles:read")
@validate_querystring(RoleQuery)
async def list_roles(query_args: RoleQuery) -> Response:
    roles = await get_identity().db.run(lambda dal: store.list_roles(dal, query_args.level))
    page = roles[query_args.offset : query_args.offset + query_args.limit]
    return ok([role_json(role) for role in page], meta=page_meta(query_args, len(roles)))


@bp.get("/roles/<int:role_id>")
@require_scope("roles:read")
async def get_role(role_id: int) -> Response:
    role = await get_identity().db.run(lambda dal: store.role_by_id(dal, role_id))
    if role is None:
        raise ApiError(404, "not_found", "Role not found")
    return ok(role_json(role))


@bp.post("/roles")
@answers(201, {
    403: "`scope_escalation`",
    409: "`conflict`: the name is taken",
    422: "`unknown_scope`",
})
@require_scope("roles:write")
@validate_request(CreateRoleBody)
async def create_role(data: CreateRoleBody) -> Response:
    principal = await require_principal()
    role = await get_identity().create_role(
        data.name, data.description, list(data.scopes), data.level, actor=principal, ip=client_ip()
    )
    return ok(role_json(role), status=201)


@bp.patch("/roles/<int:role_id>")
@answers(errors={403: "`scope_escalation`", 409: "`builtin_role`", 422: "`unknown_scope`"})
@require_scope("roles:write")
@validate_request(UpdateRoleBody)
async def update_role(role_id: int, data: UpdateRoleBody) -> Response:
    principal = await require_principal()
    scopes = list(data.scopes) if data.scopes is not None else None
    role = await get_identity().update_role(
        role_id, data.description, scopes, actor=principal, ip=client_ip()
    )
    return ok(role_json(role))


@bp.delete("/roles/<int:role_id>")
@answers(errors={409: "`builtin_role` or `role_in_use`"})
@require_scope("roles:admin")
async def delete_role(role_id: int) -> Response:
    principal = await require_principal()
    await get_identity().delete_role(role_id, actor=principal, ip=client_ip())
    return ok({"deleted": True})
