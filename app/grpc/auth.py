"""Authentication of gRPC calls, as REST does it: a bearer credential in the metadata.

`bearer_credential` reads `authorization: Bearer …`; `StreamAccess` authenticates a call,
decides which nodes a per-node scope lets it see (like `require_scope(..., per_node=True)`),
and re-checks a long stream every REAUTH_SECONDS so a revoked credential, a deactivated user or
changed node grants end it (UNAUTHENTICATED / PERMISSION_DENIED).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from app.api.envelope import ApiError
from app.identity.policy import REAUTH_SECONDS
from app.types import Authenticator, Principal

__all__ = ["REAUTH_SECONDS", "AccessDenied", "Grant", "StreamAccess", "bearer_credential"]


Context = Any  # grpc.aio.ServicerContext (its stubs make a poor alias)


def bearer_credential(context: Context) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, rest = value.partition(" ")
            if scheme.lower() == "bearer":
                return rest.strip()
    return ""


class AccessDenied(Exception):
    """The call may not go on: abort with `code` and `message`."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class Grant:
    """A caller's access under one scope: who, and which nodes (None: every node)."""

    principal: Principal
    nodes: frozenset[str] | None
    credential: str
    checked_at: float


class StreamAccess:
    """Authenticate calls and keep long streams honest; `authenticator` is looked up per use
    (the identity layer installs it at start-up)."""

    def __init__(self, authenticator: Callable[[], Authenticator | None]) -> None:
        self._authenticator = authenticator

    async def _principal(self, credential: str) -> Principal:
        authenticator = self._authenticator()
        if not credential or authenticator is None:
            raise AccessDenied(grpc.StatusCode.UNAUTHENTICATED,
                               "a bearer access token or API key is required")
        try:
            principal = await authenticator.authenticate(credential)
        except ApiError as error:
            raise AccessDenied(grpc.StatusCode.UNAVAILABLE,
                               "authentication is temporarily unavailable") from error
        if principal is None:
            raise AccessDenied(grpc.StatusCode.UNAUTHENTICATED,
                               "the credential is invalid, expired or revoked")
        return principal

    async def grant(self, context: Context, scope: str) -> Grant:
        """Who is calling and what `scope` lets it see; AccessDenied when nothing."""
        credential = bearer_credential(context)
        principal = await self._principal(credential)
        return Grant(principal, self._nodes(principal, scope), credential, time.monotonic())

    @staticmethod
    def _nodes(principal: Principal, scope: str) -> frozenset[str] | None:
        nodes = principal.nodes_for(scope)
        if nodes is not None and not nodes:
            raise AccessDenied(grpc.StatusCode.PERMISSION_DENIED,
                               f"the credential lacks the {scope} scope")
        return nodes

    async def recheck(self, grant: Grant, scope: str) -> None:
        """Every REAUTH_SECONDS (cheap otherwise): AccessDenied when the credential no longer
        works or its scope now covers other nodes. A database outage does not end a stream."""
        now = time.monotonic()
        if now - grant.checked_at < REAUTH_SECONDS:
            return
        grant.checked_at = now
        try:
            principal = await self._principal(grant.credential)
        except AccessDenied as denied:
            if denied.code == grpc.StatusCode.UNAVAILABLE:
                return
            raise
        if self._nodes(principal, scope) != grant.nodes:
            raise AccessDenied(grpc.StatusCode.PERMISSION_DENIED,
                               f"the credential's {scope} access changed; reconnect")
