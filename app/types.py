"""Types shared across the control plane's layers (one module, as in starlette/types.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = ["WS_FRAMES", "Authenticator", "Principal", "PrincipalKind", "TextSender", "covers"]

PrincipalKind = Literal["user", "api_key", "session"]

# Scope key under which the transport puts a WebSocket's `TextSender`
# (app/serving/wsframes.py) when it can write frames itself.
WS_FRAMES = "floe.ws_frames"


class TextSender(Protocol):
    """Sends one text message on an accepted WebSocket."""

    async def send_text(self, text: str) -> None: ...


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
    # node id -> scopes a resource grant (`node/<id>`) gives on that node only
    node_scopes: Mapping[str, frozenset[str]] = field(default_factory=dict, hash=False)
    # API keys for dataplanes: the node id (or `*` pattern) the key may speak for
    node_binding: str | None = None

    def has(self, scope: str) -> bool:
        """True when `scope` is granted globally, directly or through its `:admin` / `:write`
        parent."""
        return covers(self.scopes, scope)

    def nodes_for(self, scope: str) -> frozenset[str] | None:
        """Where `scope` holds: None for every node (granted globally), else the nodes whose
        resource grant covers it (possibly none)."""
        if self.has(scope):
            return None
        return frozenset(node for node, granted in self.node_scopes.items()
                         if covers(granted, scope))


def covers(granted: frozenset[str], scope: str) -> bool:
    """True when `granted` holds `scope` directly or through its `:admin` / `:write` parent."""
    if scope in granted:
        return True
    resource, _, level = scope.partition(":")
    if level == "read":
        return f"{resource}:write" in granted or f"{resource}:admin" in granted
    if level == "write":
        return f"{resource}:admin" in granted
    return False


class Authenticator(Protocol):
    """Turns a bearer credential (JWT access token or API key) into a Principal."""

    async def authenticate(self, credential: str) -> Principal | None: ...
