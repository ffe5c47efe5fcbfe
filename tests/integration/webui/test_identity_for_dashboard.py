"""What the dashboard needs from identity: "remember me" (browser-session cookies), the
caller's node grants in /me (navigation for node-granted users) and "log out everywhere"."""

from __future__ import annotations

from quart import Quart

from tests.integration.identity.conftest import ADMIN, bearer, identity_app, login, sqlite_env

__all__ = ["identity_app", "sqlite_env"]


def _set_cookies(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {h.split("=", 1)[0]: h for h in response.headers.get_all("Set-Cookie")}


def _cookie(client, name: str) -> str:  # type: ignore[no-untyped-def]
    return next(str(c.value) for c in client.cookie_jar if c.name == name)


async def test_remember_me_controls_cookie_lifetime(identity_app: Quart) -> None:
    body = {"email": ADMIN[0], "password": ADMIN[1], "session": True}
    kept = await identity_app.test_client().post("/api/v2/auth/login", json=body)
    assert kept.status_code == 200
    for name in ("floe_session", "floe_csrf"):
        assert "expires=" in _set_cookies(kept)[name].lower()  # the default: persistent
    brief = await identity_app.test_client().post(
        "/api/v2/auth/login", json={**body, "remember": False})
    assert brief.status_code == 200
    cookies = _set_cookies(brief)
    for name in ("floe_session", "floe_csrf"):
        header = cookies[name].lower()
        assert "expires=" not in header and "max-age=" not in header, header
    refused = await identity_app.test_client().post(
        "/api/v2/auth/login", json={**body, "remember": "no"})
    assert refused.status_code == 422  # strict: a boolean, like `session`


async def test_me_lists_node_grants(identity_app: Quart) -> None:
    admin = bearer((await login(identity_app))["access_token"])
    client = identity_app.test_client()
    created = await client.post("/api/v2/users", headers=admin, json={
        "email": "edge-op@example.com", "password": "Edge-operator-pass-1", "roles": []})
    assert created.status_code == 201
    user_id = (await created.get_json())["data"]["id"]
    granted = await client.post(f"/api/v2/users/{user_id}/grants", headers=admin, json={
        "role": "resource_viewer", "resource_type": "node", "resource_id": "edge-1"})
    assert granted.status_code == 201
    token = (await login(identity_app, "edge-op@example.com", "Edge-operator-pass-1"))
    me = (await (await client.get("/api/v2/me", headers=bearer(token["access_token"])))
          .get_json())["data"]
    assert me["scopes"] == []
    assert "stats:read" in me["node_scopes"]["edge-1"]
    assert list(me["node_scopes"]) == ["edge-1"]
    admin_me = (await (await client.get("/api/v2/me", headers=admin)).get_json())["data"]
    assert admin_me["node_scopes"] == {}


async def test_logout_everywhere_ends_every_session_and_token(identity_app: Quart) -> None:
    other = await login(identity_app)  # a second device: bearer + refresh token
    browser = identity_app.test_client()
    response = await browser.post("/api/v2/auth/login", json={
        "email": ADMIN[0], "password": ADMIN[1], "session": True})
    assert response.status_code == 200
    csrf = _cookie(browser, "floe_csrf")
    no_csrf = await browser.post("/api/v2/me/logout-everywhere", json={})
    assert no_csrf.status_code == 403  # a cookie write like any other
    response = await browser.post(
        "/api/v2/me/logout-everywhere", json={}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200, await response.get_json()
    assert (await response.get_json())["data"]["revoked"] >= 2
    cookies = _set_cookies(response)
    assert "floe_csrf" in cookies and "floe_session" in cookies  # both cleared
    client = identity_app.test_client()
    assert (await client.get("/api/v2/me", headers=bearer(other["access_token"]))).status_code \
        == 401
    refreshed = await client.post(
        "/api/v2/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert refreshed.status_code == 401
    assert (await browser.get("/api/v2/me")).status_code == 401
    audit = await client.get(
        "/api/v2/audit?action=logout_everywhere",
        headers=bearer((await login(identity_app))["access_token"]))
    assert (await audit.get_json())["meta"]["total"] == 1
