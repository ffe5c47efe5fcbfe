"""Authorization matrix over EVERY route in the app's URL map (all blueprints, v1 and v2).

1. Each view carries `@public`, `@authenticated` or `@require_scope(...)` (`access_of`), so a
   route added later without a mark fails here.
2. Each non-public route, for each method, is called as: anonymous -> 401; a real user and a
   real API key lacking the scope -> 403; a real user and a real API key holding exactly the
   first accepted scope -> neither 401 nor 403. Path ids point at nothing (so handlers that
   get through answer 404/422 and change nothing).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from quart import Quart
from quart.testing import WebsocketResponseError

from app.api.access import Access, access_of
from app.config import Settings
from app.factory import create_app
from app.identity import get_identity, provision_api_key
from app.identity.scopes import SCOPES
from app.types import Principal
from tests.support.databases import sqlite_env

__all__ = ["sqlite_env"]

_CONVERTER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
_FAST = {"FLOE_ARGON2_PROFILE": "fast", "FLOE_SESSION_COOKIE_SECURE": "false"}
_SUPER = Principal(kind="user", subject="matrix", scopes=SCOPES)


def _path(rule: str) -> str:
    def fill(match: re.Match[str]) -> str:
        return "999999" if match.group(1) in ("int", "float") else "zz-missing"

    return _CONVERTER.sub(fill, rule)


def _satisfies(granted: str, required: str) -> bool:
    return Principal(kind="user", subject="", scopes=frozenset({granted})).has(required)


@dataclass(slots=True)
class Caller:
    label: str
    token: str


@pytest.fixture
async def matrix_app(
    make_settings: Callable[..., Settings], sqlite_env: dict[str, str]
) -> AsyncIterator[Quart]:
    application = create_app(make_settings(**sqlite_env, **_FAST))
    async with application.test_app():
        yield application


async def _user_with(app: Quart, label: str, scopes: frozenset[str]) -> Caller:
    identity = get_identity(app)
    await identity.create_role(label, "matrix", sorted(scopes), "global", actor=_SUPER, ip="t")
    email = f"{label}@matrix.test"
    await identity.create_user(email, "matrix-password", [label], actor=None, ip="t")
    pair = await identity.login(email, "matrix-password", None, "127.0.0.9")
    return Caller(f"user[{label}]", pair.access_token)


async def _node_owner(app: Quart) -> Caller:
    """A user with no global role and an `owner` grant (every resource scope) on one node:
    only routes marked per_node may let it through."""
    identity = get_identity(app)
    user = await identity.create_user("node-owner@matrix.test", "matrix-password", [],
                                      actor=None, ip="t")
    await identity.add_grant(user.id, "owner", "node", "matrix-node", actor=_SUPER, ip="t")
    pair = await identity.login("node-owner@matrix.test", "matrix-password", None, "127.0.0.9")
    return Caller("user[node-owner]", pair.access_token)


async def _callers(
    app: Quart, index: int, scopes: tuple[str, ...]
) -> tuple[list[Caller], list[Caller]]:
    lacking = frozenset(s for s in SCOPES if not any(_satisfies(s, r) for r in scopes))
    holding = frozenset({scopes[0]})
    without = [
        await _user_with(app, f"lack-{index}", lacking),
        Caller(f"key[lack-{index}]", await _key_with(app, f"lack-{index}", lacking)),
    ]
    with_scope = [
        await _user_with(app, f"hold-{index}", holding),
        Caller(f"key[hold-{index}]", await _key_with(app, f"hold-{index}", holding)),
    ]
    return without, with_scope


async def _key_with(app: Quart, name: str, scopes: frozenset[str]) -> str:
    """A provisioned key; one that can write as a dataplane is bound to every node (`*`)."""
    node = "*" if _satisfies_any(scopes, "dataplane:write") else None
    return await provision_api_key(app, name, sorted(scopes), node_id=node)


def _satisfies_any(granted: frozenset[str], required: str) -> bool:
    return Principal(kind="user", subject="", scopes=granted).has(required)


async def _call(app: Quart, websocket: bool, method: str, path: str, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    client = app.test_client()
    if websocket:
        try:
            async with client.websocket(path, headers=headers) as ws:
                try:
                    await asyncio.wait_for(ws.receive(), 0.5)
                except TimeoutError:
                    pass
        except WebsocketResponseError as error:
            return int(error.response.status_code)
        return 101
    kwargs = {"json": {}} if method in {"POST", "PUT", "PATCH"} else {}
    response = await client.open(path, method=method, headers=headers, **kwargs)
    return int(response.status_code)


async def run_matrix(app: Quart) -> tuple[list[str], int, list[str]]:
    """(problems, checks made, rules planned)."""
    problems: list[str] = []
    checked = 0
    rules = list(app.url_map.iter_rules())
    scoped: dict[tuple[str, ...], int] = {}
    plan: list[tuple[str, bool, str, Access]] = []
    for rule in rules:
        view = app.view_functions[rule.endpoint]
        access = access_of(view)
        if access is None:
            problems.append(f"{rule.rule} ({rule.endpoint}): no @public / @require_scope mark")
            continue
        if access.public:
            continue
        unknown = [s for s in access.scopes if s not in SCOPES]
        if unknown:
            problems.append(f"{rule.rule}: scopes {unknown} are not in the catalogue")
            continue
        if access.scopes:
            scoped.setdefault(access.scopes, len(scoped))
        websocket = bool(getattr(rule, "websocket", False))
        methods = ["GET"] if websocket else sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        for method in methods:
            plan.append((method, websocket, rule.rule, access))
    assert plan, "no protected routes found"
    callers = {scopes: await _callers(app, index, scopes) for scopes, index in scoped.items()}
    node_owner = await _node_owner(app)
    per_node_routes = 0
    for method, websocket, rule, access in plan:
        path = _path(rule)
        status = await _call(app, websocket, method, path, None)
        checked += 1
        if status != 401:
            problems.append(f"{method} {path} anonymous -> {status}, expected 401")
        if not access.scopes:  # @authenticated: any principal passes
            # A fresh user per route: a self-service route may end the caller's own sessions
            # (POST /me/logout-everywhere), which must not fail the routes after it.
            viewer = await _user_with(app, f"any-user-{checked}", frozenset({"stats:read"}))
            status = await _call(app, websocket, method, path, viewer.token)
            if status in (401, 403):
                problems.append(f"{method} {path} {viewer.label} -> {status}, expected access")
            continue
        without, with_scope = callers[access.scopes]
        for caller in without:
            status = await _call(app, websocket, method, path, caller.token)
            checked += 1
            if status != 403:
                problems.append(
                    f"{method} {path} {caller.label} lacking {access.scopes} -> {status}"
                )
        for caller in with_scope:
            status = await _call(app, websocket, method, path, caller.token)
            checked += 1
            if status in (401, 403):
                problems.append(
                    f"{method} {path} {caller.label} holding {access.scopes[0]} -> {status}"
                )
        status = await _call(app, websocket, method, path, node_owner.token)
        checked += 1
        per_node_routes += access.per_node
        if access.per_node and status in (401, 403):
            problems.append(f"{method} {path} per_node, {node_owner.label} -> {status}")
        if not access.per_node and status != 403:
            problems.append(f"{method} {path} {node_owner.label} (node grant only) -> {status}, "
                            "expected 403")
    if per_node_routes != 8:  # /nodes, /stats/summary, /flows, WS /stream; under v1 and v2
        problems.append(f"{per_node_routes} per_node routes, expected 8")
    return problems, checked, [r for _, _, r, _ in plan]


async def test_every_route_is_marked_and_enforced(matrix_app: Quart) -> None:
    problems, checked, planned = await run_matrix(matrix_app)
    assert not problems, f"{len(problems)} of {checked} checks failed:\n" + "\n".join(problems)
    # Both API versions are covered.
    assert any(r.startswith("/api/v1/") for r in planned)
    assert any(r.startswith("/api/v2/") for r in planned)


async def test_matrix_catches_unmarked_and_unenforced_routes(
    make_settings: Callable[..., Settings], sqlite_env: dict[str, str]
) -> None:
    """The matrix must fail for a route without a mark and for a mark the view ignores."""
    app = create_app(make_settings(**sqlite_env, **_FAST))

    async def unmarked() -> str:
        return "open"

    async def lying() -> str:  # claims a scope but never checks it
        return "open"

    lying.__floe_access__ = Access(public=False, scopes=("rules:write",))  # type: ignore[attr-defined]
    app.add_url_rule("/api/v2/zz-unmarked", "zz_unmarked", unmarked)
    app.add_url_rule("/api/v2/zz-lying", "zz_lying", lying)
    async with app.test_app():
        problems, _, _ = await run_matrix(app)
    text = "\n".join(problems)
    assert "/api/v2/zz-unmarked (zz_unmarked): no @public" in text
    assert "GET /api/v2/zz-lying anonymous -> 200, expected 401" in text
    assert "GET /api/v2/zz-lying key[lack-" in text
