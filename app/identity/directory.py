"""Directory use cases: roles, teams and their members, and resource-level grants."""

from __future__ import annotations

from typing import Any

from app.api.envelope import ApiError
from app.identity import store
from app.identity._service_core import (
    GRANT_EXISTS,
    ROLE_EXISTS,
    TEAM_EXISTS,
    TEAM_RESOURCE_EXISTS,
    Dal,
    ServiceCore,
    audit,
    conflict_error,
    not_found,
    scopes_or_422,
    user_capabilities,
)
from app.identity.policy import Action, Capabilities, authorize
from app.identity.records import RoleRecord, TeamRecord, utcnow
from app.identity.scopes import ROLE_LEVELS
from app.types import Principal

__all__ = ["DirectoryUseCases"]


def _conferred(dal: Dal, team_id: int) -> Capabilities:
    """What the team gives its members: its team roles' scopes on each node it holds."""
    nodes = [r["resource_id"] for r in store.team_resources(dal, team_id)
             if r["resource_type"] == "node"]
    return Capabilities.on_nodes(store.team_role_scopes(dal, team_id), nodes)


class DirectoryUseCases(ServiceCore):
    """Roles, teams and resource grants."""

    # --- roles -----------------------------------------------------------------------------

    async def create_role(
        self,
        name: str,
        description: str,
        scopes: list[str],
        level: str,
        *,
        actor: Principal,
        ip: str,
    ) -> RoleRecord:
        chosen = scopes_or_422(scopes)
        authorize(actor, Action.ROLE_CREATE, granting=Capabilities(chosen))
        if level not in ROLE_LEVELS:
            raise ApiError(422, "invalid_level", f"level must be one of {', '.join(ROLE_LEVELS)}")

        def work(dal: Dal) -> RoleRecord:
            if store.role_by_name(dal, name) is not None:
                raise conflict_error(ROLE_EXISTS)
            dal.auth_role.insert(
                name=name,
                description=description,
                scopes=" ".join(sorted(chosen)),
                builtin=False,
                level=level,
                created_at=utcnow(),
            )
            audit(dal, "role_create", actor, ip, f"role:{name}", details={"scopes": sorted(chosen)})
            role = store.role_by_name(dal, name)
            assert role is not None
            return role

        role: RoleRecord = await self._commit(work, conflict=ROLE_EXISTS)
        return role

    async def update_role(
        self,
        role_id: int,
        description: str | None,
        scopes: list[str] | None,
        *,
        actor: Principal,
        ip: str,
    ) -> RoleRecord:
        chosen = scopes_or_422(scopes) if scopes is not None else None

        def work(dal: Dal) -> RoleRecord:
            row = dal(dal.auth_role.id == role_id).select().first()
            if row is None:
                raise not_found("Role")
            if row.builtin:
                raise ApiError(409, "builtin_role", "Built-in roles cannot be changed")
            current = store.role_by_id(dal, role_id)
            assert current is not None
            # Its holders lose what is taken out and gain what is put in: hold both.
            authorize(actor, Action.ROLE_UPDATE, target=Capabilities(frozenset(current.scopes)),
                      granting=Capabilities(chosen or frozenset()))
            updates: dict[str, Any] = {}
            if description is not None:
                updates["description"] = description
            if chosen is not None:
                updates["scopes"] = " ".join(sorted(chosen))
            if updates:
                row.update_record(**updates)
            audit(
                dal,
                "role_update",
                actor,
                ip,
                f"role:{row.name}",
                details={"scopes": sorted(chosen or [])},
            )
            role = store.role_by_name(dal, row.name)
            assert role is not None
            return role

        role: RoleRecord = await self.db.run(work)
        self.cache.forget_all_users()
        return role

    async def delete_role(self, role_id: int, *, actor: Principal, ip: str) -> None:
        def work(dal: Dal) -> None:
            row = dal(dal.auth_role.id == role_id).select().first()
            if row is None:
                raise not_found("Role")
            if row.builtin:
                raise ApiError(409, "builtin_role", "Built-in roles cannot be deleted")
            current = store.role_by_id(dal, role_id)
            assert current is not None
            authorize(actor, Action.ROLE_DELETE, target=Capabilities(frozenset(current.scopes)))
            in_use = (
                dal(dal.team_member.role_id == role_id).count()
                + dal(dal.resource_grant.role_id == role_id).count()
            )
            if in_use:
                raise ApiError(
                    409, "role_in_use", "The role is used by team members or resource grants"
                )
            dal(dal.auth_user_role.role_id == role_id).delete()
            dal(dal.auth_role.id == role_id).delete()
            audit(dal, "role_delete", actor, ip, f"role:{row.name}")

        await self.db.run(work)
        self.cache.forget_all_users()

    # --- teams -----------------------------------------------------------------------------

    async def create_team(
        self, name: str, description: str, *, actor: Principal, ip: str
    ) -> TeamRecord:
        def work(dal: Dal) -> TeamRecord:
            if dal(dal.team.name == name).count():
                raise conflict_error(TEAM_EXISTS)
            team_id = int(dal.team.insert(name=name, description=description, created_at=utcnow()))
            audit(dal, "team_create", actor, ip, f"team:{team_id}")
            team = store.team_record(dal, team_id)
            assert team is not None
            return team

        team: TeamRecord = await self._commit(work, conflict=TEAM_EXISTS)
        return team

    async def set_member(
        self, team_id: int, user_id: int, role: str, *, actor: Principal, ip: str
    ) -> TeamRecord:
        def work(dal: Dal) -> TeamRecord:
            if dal(dal.team.id == team_id).count() == 0:
                raise not_found("Team")
            target = user_capabilities(dal, user_id)
            role_row = store.role_by_name(dal, role)
            if role_row is None or role_row.level != "team":
                raise ApiError(
                    422, "unknown_role", "role must be a team-level role (e.g. team_viewer)"
                )
            # Held everywhere, not only on the team's nodes today: the team may be given
            # more nodes later, and each would then carry this role's scopes.
            authorize(actor, Action.TEAM_SET_MEMBER, target=target,
                      granting=Capabilities(frozenset(role_row.scopes)))
            query = (dal.team_member.team_id == team_id) & (dal.team_member.user_id == user_id)
            if dal(query).count():
                dal(query).update(role_id=role_row.id)
            else:
                dal.team_member.insert(team_id=team_id, user_id=user_id, role_id=role_row.id)
            audit(
                dal,
                "team_member_set",
                actor,
                ip,
                f"team:{team_id}",
                details={"user_id": user_id, "role": role},
            )
            team = store.team_record(dal, team_id)
            assert team is not None
            return team

        team: TeamRecord = await self._commit(work, forget_user=user_id)
        return team

    async def remove_member(self, team_id: int, user_id: int, *, actor: Principal, ip: str) -> None:
        def work(dal: Dal) -> None:
            query = (dal.team_member.team_id == team_id) & (dal.team_member.user_id == user_id)
            if dal(query).count() == 0:
                raise not_found("Team member")
            authorize(actor, Action.TEAM_REMOVE_MEMBER, target=user_capabilities(dal, user_id))
            dal(query).delete()
            audit(
                dal,
                "team_member_remove",
                actor,
                ip,
                f"team:{team_id}",
                details={"user_id": user_id},
            )

        await self._commit(work, forget_user=user_id)

    async def delete_team(self, team_id: int, *, actor: Principal, ip: str) -> list[int]:
        def work(dal: Dal) -> list[int]:
            if dal(dal.team.id == team_id).count() == 0:
                raise not_found("Team")
            authorize(actor, Action.TEAM_DELETE, target=_conferred(dal, team_id))
            members = store.team_member_ids(dal, team_id)
            dal(dal.team_member.team_id == team_id).delete()
            dal(dal.team_resource.team_id == team_id).delete()
            dal(dal.team.id == team_id).delete()
            audit(dal, "team_delete", actor, ip, f"team:{team_id}")
            return members

        members: list[int] = await self.db.run(work)
        for user_id in members:
            self.cache.forget_user(user_id)
        return members

    async def update_team(
        self, team_id: int, description: str | None, *, actor: Principal, ip: str
    ) -> TeamRecord:
        def work(dal: Dal) -> TeamRecord:
            if dal(dal.team.id == team_id).count() == 0:
                raise not_found("Team")
            if description is not None:
                dal(dal.team.id == team_id).update(description=description)
            audit(dal, "team_update", actor, ip, f"team:{team_id}")
            team = store.team_record(dal, team_id)
            assert team is not None
            return team

        team: TeamRecord = await self.db.run(work)
        return team

    # --- resources a team holds -------------------------------------------------------------

    async def add_team_resource(
        self, team_id: int, resource_type: str, resource_id: str, *, actor: Principal, ip: str
    ) -> int:
        """Give the team a resource: every member gets its team role's scopes there. The actor
        must hold those scopes itself (no escalation through a team)."""

        def work(dal: Dal) -> tuple[int, list[int]]:
            if dal(dal.team.id == team_id).count() == 0:
                raise not_found("Team")
            authorize(actor, Action.TEAM_ADD_RESOURCE, granting=Capabilities.on_nodes(
                store.team_role_scopes(dal, team_id), [resource_id]))
            query = ((dal.team_resource.team_id == team_id)
                     & (dal.team_resource.resource_type == resource_type)
                     & (dal.team_resource.resource_id == resource_id))
            if dal(query).count():
                raise conflict_error(TEAM_RESOURCE_EXISTS)
            resource = int(dal.team_resource.insert(
                team_id=team_id, resource_type=resource_type, resource_id=resource_id,
                created_at=utcnow()))
            audit(dal, "team_resource_add", actor, ip, f"team:{team_id}",
                  details={"resource": f"{resource_type}/{resource_id}"})
            return resource, store.team_member_ids(dal, team_id)

        resource, members = await self._commit(work, conflict=TEAM_RESOURCE_EXISTS)
        for user_id in members:
            self.cache.forget_user(user_id)
        return resource

    async def remove_team_resource(
        self, team_id: int, resource: int, *, actor: Principal, ip: str
    ) -> None:
        def work(dal: Dal) -> list[int]:
            query = (dal.team_resource.id == resource) & (dal.team_resource.team_id == team_id)
            row = dal(query).select().first()
            if row is None:
                raise not_found("Team resource")
            authorize(actor, Action.TEAM_REMOVE_RESOURCE, target=Capabilities.on_nodes(
                store.team_role_scopes(dal, team_id), [row.resource_id]))
            dal(query).delete()
            audit(dal, "team_resource_remove", actor, ip, f"team:{team_id}",
                  details={"resource": f"{row.resource_type}/{row.resource_id}"})
            return store.team_member_ids(dal, team_id)

        for user_id in await self._commit(work):
            self.cache.forget_user(user_id)

    # --- resource-level grants ---------------------------------------------------------------

    async def list_grants(self, user_id: int) -> list[dict[str, Any]]:
        def work(dal: Dal) -> list[dict[str, Any]]:
            if store.user_row_by_id(dal, user_id) is None:
                raise not_found("User")
            rows = dal(
                (dal.resource_grant.user_id == user_id)
                & (dal.resource_grant.role_id == dal.auth_role.id)
            ).select(dal.resource_grant.ALL, dal.auth_role.name, orderby=dal.resource_grant.id)
            return [
                {
                    "id": int(r.resource_grant.id),
                    "role": r.auth_role.name,
                    "resource_type": r.resource_grant.resource_type,
                    "resource_id": r.resource_grant.resource_id,
                    "created_at": r.resource_grant.created_at,
                }
                for r in rows
            ]

        grants: list[dict[str, Any]] = await self.db.run(work)
        return grants

    async def add_grant(
        self,
        user_id: int,
        role: str,
        resource_type: str,
        resource_id: str,
        *,
        actor: Principal,
        ip: str,
    ) -> int:
        def work(dal: Dal) -> int:
            target = user_capabilities(dal, user_id)
            role_row = store.role_by_name(dal, role)
            if role_row is None or role_row.level != "resource":
                raise ApiError(
                    422, "unknown_role", "role must be a resource-level role (e.g. editor)"
                )
            # The grant gives the role's scopes on that node only: held there is enough.
            authorize(actor, Action.GRANT_ADD, target=target, granting=Capabilities.on_nodes(
                role_row.scopes, [resource_id]))
            query = (
                (dal.resource_grant.user_id == user_id)
                & (dal.resource_grant.resource_type == resource_type)
                & (dal.resource_grant.resource_id == resource_id)
            )
            if dal(query).count():
                raise conflict_error(GRANT_EXISTS)
            grant_id = int(
                dal.resource_grant.insert(
                    user_id=user_id,
                    role_id=role_row.id,
                    resource_type=resource_type,
                    resource_id=resource_id,
                    created_at=utcnow(),
                )
            )
            audit(
                dal,
                "grant_add",
                actor,
                ip,
                f"user:{user_id}",
                details={"role": role, "resource": f"{resource_type}/{resource_id}"},
            )
            return grant_id

        grant_id: int = await self._commit(work, conflict=GRANT_EXISTS, forget_user=user_id)
        return grant_id

    async def remove_grant(self, user_id: int, grant_id: int, *, actor: Principal, ip: str) -> None:
        def work(dal: Dal) -> None:
            query = (dal.resource_grant.id == grant_id) & (dal.resource_grant.user_id == user_id)
            if dal(query).count() == 0:
                raise not_found("Grant")
            authorize(actor, Action.GRANT_REMOVE, target=user_capabilities(dal, user_id))
            dal(query).delete()
            audit(dal, "grant_remove", actor, ip, f"user:{user_id}", details={"grant_id": grant_id})

        await self._commit(work, forget_user=user_id)
