"""/teams, their members (each member holds one team-level role) and the resources they hold
(nodes: every member gets its team role's scopes on them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from quart import Blueprint, Response
from quart_schema import validate_querystring, validate_request

from app.api.access import require_principal, require_scope
from app.api.envelope import ApiError, ok
from app.api.openapi import answers
from app.identity import get_identity, store
from app.identity.web import Name, Page, StrictModel, client_ip, page_meta, team_json

__all__ = ["bp"]

bp = Blueprint("teams", __name__)


class CreateTeamBody(StrictModel):
    name: Name
    description: str = Field(default="", max_length=255, strict=True)


class UpdateTeamBody(StrictModel):
    description: str | None = Field(default=None, max_length=255, strict=True)


class MemberBody(StrictModel):
    role: Name = "team_viewer"


class ResourceBody(StrictModel):
    resource_type: Literal["node"]  # exact, as for user grants (docs/api.md)
    resource_id: str = Field(min_length=1, max_length=128, strict=True)


class TeamQuery(Page):
    name: str | None = Field(default=None, max_length=80)


@bp.get("/teams")
@require_scope("teams:read")
@validate_querystring(TeamQuery)
async def list_teams(query_args: TeamQuery) -> Response:
    q = query_args
    teams, total = await get_identity().db.run(
        lambda dal: store.list_teams(dal, name=q.name, offset=q.offset, limit=q.limit)
    )
    return ok([team_json(team) for team in teams], meta=page_meta(q, total))


@bp.post("/teams")
@answers(201, {409: "`conflict`: the name is taken"})
@require_scope("teams:write")
@validate_request(CreateTeamBody)
async def create_team(data: CreateTeamBody) -> Response:
    principal = await require_principal()
    team = await get_identity().create_team(
        data.name, data.description, actor=principal, ip=client_ip()
    )
    return ok(team_json(team), status=201)


@bp.get("/teams/<int:team_id>")
@require_scope("teams:read")
async def get_team(team_id: int) -> Response:
    team = await get_identity().db.run(lambda dal: store.team_record(dal, team_id))
    if team is None:
        raise ApiError(404, "not_found", "Team not found")
    return ok(team_json(team))


@bp.patch("/teams/<int:team_id>")
@require_scope("teams:write")
@validate_request(UpdateTeamBody)
async def update_team(team_id: int, data: UpdateTeamBody) -> Response:
    principal = await require_principal()
    team = await get_identity().update_team(
        team_id, data.description, actor=principal, ip=client_ip()
    )
    return ok(team_json(team))


@bp.delete("/teams/<int:team_id>")
@require_scope("teams:admin")
async def delete_team(team_id: int) -> Response:
    principal = await require_principal()
    await get_identity().delete_team(team_id, actor=principal, ip=client_ip())
    return ok({"deleted": True})


@bp.get("/teams/<int:team_id>/members")
@require_scope("teams:read")
async def list_members(team_id: int) -> Response:
    team = await get_identity().db.run(lambda dal: store.team_record(dal, team_id))
    if team is None:
        raise ApiError(404, "not_found", "Team not found")
    return ok(team.members)


@bp.put("/teams/<int:team_id>/members/<int:user_id>")
@answers(errors={403: "`target_outranks_caller` or `scope_escalation`",
                 422: "`unknown_role`: not a team-level role"})
@require_scope("teams:write")
@validate_request(MemberBody)
async def set_member(team_id: int, user_id: int, data: MemberBody) -> Response:
    principal = await require_principal()
    team = await get_identity().set_member(
        team_id, user_id, data.role, actor=principal, ip=client_ip()
    )
    return ok(team_json(team))


@bp.delete("/teams/<int:team_id>/members/<int:user_id>")
@require_scope("teams:write")
async def remove_member(team_id: int, user_id: int) -> Response:
    principal = await require_principal()
    await get_identity().remove_member(team_id, user_id, actor=principal, ip=client_ip())
    return ok({"deleted": True})


@bp.get("/teams/<int:team_id>/resources")
@require_scope("teams:read")
async def list_resources(team_id: int) -> Response:
    def work(dal: Any) -> list[dict[str, Any]] | None:
        if dal(dal.team.id == team_id).count() == 0:
            return None
        return store.team_resources(dal, team_id)

    resources = await get_identity().db.run(work)
    if resources is None:
        raise ApiError(404, "not_found", "Team not found")
    return ok(resources)


@bp.post("/teams/<int:team_id>/resources")
@answers(201, {403: "`scope_escalation`", 409: "`conflict`: the team holds it"})
@require_scope("teams:write")
@validate_request(ResourceBody)
async def add_resource(team_id: int, data: ResourceBody) -> Response:
    principal = await require_principal()
    resource = await get_identity().add_team_resource(
        team_id, data.resource_type, data.resource_id, actor=principal, ip=client_ip()
    )
    return ok({"id": resource, "resource_type": data.resource_type,
               "resource_id": data.resource_id}, status=201)


@bp.delete("/teams/<int:team_id>/resources/<int:resource>")
@require_scope("teams:write")
async def remove_resource(team_id: int, resource: int) -> Response:
    principal = await require_principal()
    await get_identity().remove_team_resource(team_id, resource, actor=principal, ip=client_ip())
    return ok({"deleted": True})
