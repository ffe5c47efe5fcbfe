"""Route access declarations: every route is either `@public` or `@require_scope(...)`.

The authorization matrix test (tests/integration/test_authz_matrix.py) walks the URL map
and fails for any view that carries neither mark, so a new route cannot skip the check.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from quart import g, has_websocket_context, request, websocket

from app.api.envelope import ApiError
from app.api.origin import check_websocket_origin
from app.runtime import get_runtime
from app.types import Principal

__all__ = [
    "Access",
    "access_of",
    "authenticated",
    "current_principal",
    "public",
    "require_principal",
    "require_scope",
    "visible_nodes",
]

P = ParamSpec("P")
R = TypeVar("R")

ACCESS_ATTR = "__floe_access__"


@dataclass(slots=True, frozen=True)
class Access:
    """`public`, or any of `scopes`; no scopes and not public means "any authenticated caller"."""

    public: bool
    scopes: tuple[str, ...] = ()
    per_node: bool = False  # also open to resource grants on nodes; the view filters


def access_of(view: Callable[..., Any]) -> Access | None:
    return getattr(view, ACCESS_ATTR, None)


def public(view: Callable[P, R]) -> Callable[P, R]:
    """Mark a view as reachable without credentials (probes, login, ping, docs)."""
    setattr(view, ACCESS_ATTR, Access(public=True))
    return view


def _bearer() -> str | None:
    """The bearer credential of the current HTTP request or WebSocket handshake."""
    source = websocket if has_websocket_context() else request
    header = source.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        return credential.strip()
    if source.path.endswith("/stream"):
        # Browsers cannot set headers on a WebSocket: accept ?access_token= there only.
        token = source.args.get("access_token")
        if token:
            return token
    return None


async def current_principal() -> Principal | None:
    """Authenticate once per request; the result is cached on `g`.

    Order: a bearer credential (JWT or API key; a bad one is a 401, never a fallback), else
    the browser session cookie (which enforces CSRF on unsafe methods, and the Origin on a
    WebSocket upgrade: `app.api.origin`), else anonymous.
    """
    if "principal" in g:
        principal: Principal | None = g.principal
        return principal
    principal = None
    credential = _bearer()
    authenticator = get_runtime().authenticator
    if credential is not None and authenticator is not None:
        principal = await authenticator.authenticate(credential)
        if principal is None:
            raise ApiError(
                401, "invalid_token", "The bearer credential is invalid, expired or revoked"
            )
    if principal is None:
        session_auth = get_runtime().components.get("session_authenticator")
        if session_auth is not None:
            principal = await session_auth.authenticate_request()
            if principal is not None and has_websocket_context():
                check_websocket_origin()  # the cookie is ambient: cross-site hijacking
    g.principal = principal
    return principal


def _unauthenticated() -> ApiError:
    return ApiError(
        401,
        "unauthenticated",
        "Authentication required",
        headers={"WWW-Authenticate": 'Bearer realm="floe"'},
    )


async def require_principal() -> Principal:
    """The authenticated caller, or 401 (for views marked `@authenticated`)."""
    principal = await current_principal()
    if principal is None:
        raise _unauthenticated()
    return principal


def authenticated(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Allow any authenticated caller, whatever its scopes (e.g. `/me`)."""

    @functools.wraps(view)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        await require_principal()
        return await view(*args, **kwargs)

    setattr(wrapper, ACCESS_ATTR, Access(public=False, scopes=()))
    return wrapper


def require_scope(
    *scopes: str, per_node: bool = False
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Allow the call when the principal holds at least one of `scopes`.

    `per_node`: a scope held only through resource grants on some nodes (`node/<id>`) also
    lets the call through; the view must then show only `await visible_nodes(scope)`.
    """

    def allowed(principal: Principal) -> bool:
        if any(principal.has(scope) for scope in scopes):
            return True
        return per_node and any(principal.nodes_for(scope) for scope in scopes)

    def decorator(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(view)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            principal = await require_principal()
            if not allowed(principal):
                raise ApiError(
                    403,
                    "insufficient_scope",
                    "The credential lacks the scope this operation needs",
                    details={"required_any_of": list(scopes)},
                )
            return await view(*args, **kwargs)

        setattr(wrapper, ACCESS_ATTR, Access(public=False, scopes=tuple(scopes),
                                             per_node=per_node))
        return wrapper

    return decorator


async def visible_nodes(scope: str) -> frozenset[str] | None:
    """The node ids the caller may see under `scope`: None for all (a global grant)."""
    return (await require_principal()).nodes_for(scope)
