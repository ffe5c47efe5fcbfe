"""Types shared across the control plane's layers (one module, as in starlette/types.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = ["Authenticator", "Principal", "PrincipalKind"]

PrincipalKind = Literal["user", "api_key", "session"]


@dataclass(slots=True, frozen=True)
class Principal:
    """Who is calling, and with which scopes; computed once per request or stream."""

    kind: PrincipalKind
    subject: str
    scopes: frozenset[str]
    user_id: int | None = None
    client_id: int | None = None
    email: str | None = None
    teams: frozenset[int] = field(default_factory=frozenset)

    def has(self, scope: str) -> bool:
        """True when `scope` is granted directly or through its `:admin` / `:write` parent."""
        if scope in self.scopes:
            return True
        resource, _, level = scope.partition(":")
        if level == "read":
            return f"{resource}:write" in self.scopes or f"{resource}:admin" in self.scopes
        if level == "write":
            return f"{resource}:admin" in self.scopes
        return False


class Authenticator(Protocol):
    """Turns a bearer credential (JWT access token or API key) into a Principal."""

    async def authenticate(self, credential: str) -> Principal | None: ...
