"""HTTP helpers shared by the identity routes: request models, pagination, JSON shapes.

Request models bound every string (so the OpenAPI document states the limits and no value
reaches the database longer than its column) and reject unknown fields.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from quart import request

from app.identity.records import ApiKeyRecord, RoleRecord, TeamRecord, UserRecord

__all__ = [
    "Email",
    "Name",
    "Page",
    "Password",
    "ScopeName",
    "StrictModel",
    "client_ip",
    "key_json",
    "page_meta",
    "role_json",
    "team_json",
    "user_json",
]

Email = Annotated[
    str,
    StringConstraints(
        strict=True,
        strip_whitespace=True,
        min_length=3,
        max_length=255,
        pattern=r"^[^@\s]+@[^@\s]+$",
    ),
]
Password = Annotated[str, StringConstraints(strict=True, min_length=8, max_length=256)]
Name = Annotated[
    str, StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=80)
]
ScopeName = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64)]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False


class StrictModel(BaseModel):
    """Unknown fields refused; NUL characters refused anywhere (PostgreSQL cannot store them,
    and no identity field has a use for them)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if _has_nul(data):
            raise ValueError("strings must not contain NUL characters")
        return data


class Page(StrictModel):
    """`?offset=&limit=` on every list (limit ≤ 200)."""

    offset: int = Field(default=0, ge=0, le=1_000_000)
    limit: int = Field(default=50, ge=1, le=200)


def page_meta(page: Page, total: int) -> dict[str, int]:
    return {"offset": page.offset, "limit": page.limit, "total": total}


def client_ip() -> str:
    """The peer address (proxies are not trusted for security decisions)."""
    return (request.remote_addr or "")[:64]


def user_json(user: UserRecord) -> dict[str, Any]:
    data = asdict(user)
    data["confirmed"] = user.confirmed_at is not None
    return data


def role_json(role: RoleRecord) -> dict[str, Any]:
    return asdict(role)


def team_json(team: TeamRecord) -> dict[str, Any]:
    return asdict(team)


def key_json(key: ApiKeyRecord) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": sorted(key.scopes),
        "owner_user_id": key.owner_user_id,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "last_used_at": key.last_used_at,
        "created_at": key.created_at,
        "node_id": key.node_id,
    }
