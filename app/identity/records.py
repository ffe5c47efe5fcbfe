"""Plain records the identity layer passes around (never PyDAL rows outside store.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from app.db.schema import utcnow
from app.types import Principal, PrincipalKind

__all__ = ["ApiKeyRecord", "RoleRecord", "TeamRecord", "UserRecord", "UserState", "utcnow"]


@dataclass(slots=True)
class RoleRecord:
    id: int
    name: str
    description: str
    scopes: list[str]
    builtin: bool
    level: str


@dataclass(slots=True)
class UserRecord:
    id: int
    email: str
    display_name: str | None
    active: bool
    confirmed_at: datetime | None
    totp_enabled: bool
    roles: list[str] = field(default_factory=list)
    teams: list[int] = field(default_factory=list)
    last_login_at: datetime | None = None
    current_login_at: datetime | None = None
    last_login_ip: str | None = None
    current_login_ip: str | None = None
    login_count: int = 0
    locked_until: datetime | None = None
    created_at: datetime | None = None


@dataclass(slots=True)
class UserState:
    """What authentication needs about a user; cached in memory, invalidated on change."""

    id: int
    email: str
    active: bool
    scopes: frozenset[str]
    teams: frozenset[int]
    # node id -> scopes of the user's resource grants on `node/<id>` (see Principal.nodes_for)
    node_scopes: dict[str, frozenset[str]]
    # Tokens and sessions carry this stamp (a slice of fs_uniquifier, which changes on
    # password change/reset): a stale stamp is refused.
    stamp: str

    def principal(self, kind: PrincipalKind) -> Principal:
        """The caller this user is, for a bearer token ("user") or a cookie ("session")."""
        return Principal(
            kind=kind,
            subject=f"user:{self.id}",
            scopes=self.scopes,
            user_id=self.id,
            email=self.email,
            teams=self.teams,
            node_scopes=MappingProxyType(self.node_scopes),  # read-only: the cache owns it
        )


@dataclass(slots=True)
class ApiKeyRecord:
    id: int
    name: str
    prefix: str
    key_hash: str
    scopes: frozenset[str]
    owner_user_id: int | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime | None
    node_id: str | None = None  # dataplane keys: the node id or `*` pattern it may claim


@dataclass(slots=True)
class TeamRecord:
    id: int
    name: str
    description: str
    members: list[dict[str, object]] = field(default_factory=list)
