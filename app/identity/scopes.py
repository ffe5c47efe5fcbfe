"""The scope catalogue and the built-in roles mapped onto it (the standard's RBAC model).

Scopes are `resource:level` with level read ⊂ write ⊂ admin (see `Principal.has`). Roles exist
at three levels: global (apply everywhere), team (within a team's nodes) and resource (one
object). Custom roles pick any scopes from the catalogue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "BUILTIN_ROLES",
    "RESOURCES",
    "ROLE_LEVELS",
    "SCOPES",
    "BuiltinRole",
    "UnknownScopeError",
    "normalise_scopes",
]

# resource -> levels it supports (admin only where an admin action exists).
RESOURCES: dict[str, tuple[str, ...]] = {
    "users": ("read", "write", "admin"),
    "roles": ("read", "write", "admin"),
    "teams": ("read", "write", "admin"),
    "clients": ("read", "write", "admin"),
    "stats": ("read",),
    "flows": ("read",),
    "rules": ("read", "write"),
    "alerts": ("read", "write"),
    "captures": ("read", "write"),
    "settings": ("read", "write", "admin"),
    "audit": ("read",),
    "dataplane": ("read", "write", "admin"),
}

SCOPES: frozenset[str] = frozenset(
    f"{resource}:{level}" for resource, levels in RESOURCES.items() for level in levels
)

ROLE_LEVELS = ("global", "team", "resource")

# Resources whose management is "user management" (kept from maintainers).
_USER_MANAGEMENT = {"users", "roles", "teams", "clients", "audit", "settings"}


class UnknownScopeError(ValueError):
    """A requested scope is not in the catalogue."""

    def __init__(self, unknown: list[str]) -> None:
        super().__init__("unknown scopes: " + ", ".join(unknown))
        self.unknown = unknown


def normalise_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """Validate against the catalogue; raises UnknownScopeError listing every bad name."""
    wanted = {scope.strip() for scope in scopes if scope.strip()}
    unknown = sorted(wanted - SCOPES)
    if unknown:
        raise UnknownScopeError(unknown)
    return frozenset(wanted)


def _all(levels: tuple[str, ...], resources: Iterable[str] | None = None) -> frozenset[str]:
    names = RESOURCES if resources is None else resources
    return frozenset(f"{res}:{lvl}" for res in names for lvl in levels if lvl in RESOURCES[res])


@dataclass(slots=True, frozen=True)
class BuiltinRole:
    name: str
    level: str
    description: str
    scopes: frozenset[str]


_RESOURCE_SCOPES = [r for r in RESOURCES if r not in _USER_MANAGEMENT]

BUILTIN_ROLES: tuple[BuiltinRole, ...] = (
    BuiltinRole("admin", "global", "Full access, including user management", SCOPES),
    BuiltinRole(
        "maintainer",
        "global",
        "Read/write on resources, no user management",
        _all(("read", "write"), _RESOURCE_SCOPES)
        | frozenset({"teams:read", "settings:read", "clients:read", "clients:write"}),
    ),
    BuiltinRole(
        "viewer", "global", "Read-only access to resources", _all(("read",), _RESOURCE_SCOPES)
    ),
    BuiltinRole(
        "team_admin",
        "team",
        "Full access within a team",
        _all(("read", "write", "admin"), _RESOURCE_SCOPES),
    ),
    BuiltinRole(
        "team_maintainer",
        "team",
        "Read/write within a team",
        _all(("read", "write"), _RESOURCE_SCOPES),
    ),
    BuiltinRole(
        "team_viewer", "team", "Read-only within a team", _all(("read",), _RESOURCE_SCOPES)
    ),
    BuiltinRole(
        "owner",
        "resource",
        "Full control of one resource",
        _all(("read", "write", "admin"), _RESOURCE_SCOPES),
    ),
    BuiltinRole(
        "editor",
        "resource",
        "Read/write on one resource",
        _all(("read", "write"), _RESOURCE_SCOPES),
    ),
    BuiltinRole(
        "resource_viewer",
        "resource",
        "Read-only on one resource",
        _all(("read",), _RESOURCE_SCOPES),
    ),
)
