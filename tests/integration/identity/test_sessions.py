"""Cookie sessions (quart-auth) with CSRF on cookie-authenticated writes; secret key file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from quart import Quart

from app.factory import create_app
from app.runtime import get_runtime
from tests.integration.identity.conftest import FAST, bearer, login


def _cookie(client, name: str) -> str | None:  # type: ignore[no-untyped-def]
    for cookie in client.cookie_jar:
        if cookie.name == name:
            return str(cookie.value)
    return None


async def test_session_cookie_and_csrf(identity_app: Quart) -> None:
    client = identity_app.test_client()
    response = await client.post(
        "/api/v2/auth/login",
        json={"email": "admin@localhost.local", "password": "admin123", "session": True},
    )
    assert response.status_code == 200
    set_cookie = response.headers.get_all("Set-Cookie")
    session_header = next(h for h in set_cookie if h.startswith("floe_session="))
    assert "HttpOnly" in session_header and "SameSite=Strict" in session_header
    csrf = _cookie(client, "floe_csrf")
    assert csrf
    # Reads work with the cookie alone.
    me = await (await client.get("/api/v2/me")).get_json()
    assert me["data"]["kind"] == "session"
    # Writes without the CSRF header are refused; with it they pass.
    body = {"name": "from-browser", "scopes": ["stats:read"]}
    response = await client.post("/api/v2/clients", json=body)
    assert response.status_code == 403
    assert (await response.get_json())["error"]["code"] == "csrf_failed"
    response = await client.post("/api/v2/clients", json=body, headers={"X-CSRF-Token": "0" * 64})
    assert response.status_code == 403
    response = await client.post("/api/v2/clients", json=body, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 201
    # A bearer request needs no CSRF token even when a cookie is present.
    token = (await login(identity_app))["access_token"]
    response = await client.post("/api/v2/clients", json=body, headers=bearer(token))
    assert response.status_code == 201
    # Logout revokes the session: the old cookie value no longer authenticates.
    session_value = _cookie(client, "floe_session")
    response = await client.post("/api/v2/auth/logout", json={})
    assert (response.status_code, (await response.get_json())["error"]["code"]) == (
        403, "csrf_failed")  # the cookie alone cannot end the session (issue 10 item 18)
    response = await client.post("/api/v2/auth/logout", json={}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200
    other = identity_app.test_client()
    other.set_cookie("localhost", "floe_session", session_value or "")
    assert (await other.get("/api/v2/me")).status_code == 401
    # A tampered cookie is ignored.
    other.set_cookie("localhost", "floe_session", (session_value or "x") + "x")
    assert (await other.get("/api/v2/me")).status_code == 401


async def test_secure_cookie_flag_by_default(make_settings, sqlite_env) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(**sqlite_env, FLOE_ARGON2_PROFILE="fast"))
    async with app.test_app():
        response = await app.test_client().post(
            "/api/v2/auth/login",
            json={"email": "admin@localhost.local", "password": "admin123", "session": True},
            scheme="https",
        )
        assert response.status_code == 200
        cookies = response.headers.get_all("Set-Cookie")
        assert all("Secure" in h for h in cookies if h.startswith(("floe_session=", "floe_csrf=")))


async def test_generated_secret_key_and_dataplane_key(make_settings, sqlite_env) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(**sqlite_env, **FAST, SECRET_KEY="")
    app = create_app(settings)
    async with app.test_app():
        secret_path = Path(settings.data_dir) / "secret_key"
        assert stat.S_IMODE(os.stat(secret_path).st_mode) == 0o600
        tokens = await login(app)
        key_path = Path(settings.data_dir) / "dataplane.key"
        first_key = key_path.read_text().strip()
        # Revoke the provisioned key: the next start mints a new one and rewrites the file.
        service = get_runtime(app).components["identity"]
        keys = await service.db.run(
            lambda dal: dal(dal.api_client.name == "local-dataplane").select()
        )
        await service.revoke_api_key(int(keys[0].id), actor=None, ip="test")
    again = create_app(settings)
    async with again.test_app():
        # Same generated secret: tokens minted before the restart remain valid.
        assert (
            await again.test_client().get("/api/v2/me", headers=bearer(tokens["access_token"]))
        ).status_code == 200
        second_key = key_path.read_text().strip()
        assert second_key != first_key
        assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
        me = await (
            await again.test_client().get("/api/v2/me", headers=bearer(second_key))
        ).get_json()
        assert me["data"]["scopes"] == ["dataplane:write"]
        assert (
            await again.test_client().get("/api/v2/me", headers=bearer(first_key))
        ).status_code == 401


async def test_websocket_auth_by_bearer_query_and_cookie(make_settings, sqlite_env) -> None:  # type: ignore[no-untyped-def]
    """`current_principal()` works in a WebSocket handshake: header, ?access_token= on
    /stream paths, and the session cookie (what the dashboard uses)."""
    from quart import websocket
    from quart.testing import WebsocketResponseError

    from app.api.access import current_principal, require_scope

    app = create_app(make_settings(**sqlite_env, **FAST))

    @require_scope("stats:read")
    async def probe_stream() -> None:
        principal = await current_principal()
        await websocket.accept()
        await websocket.send(principal.kind if principal else "none")

    app.add_websocket("/zz/probe/stream", "zz_probe_stream", probe_stream)
    async with app.test_app():
        tokens = await login(app)
        client = app.test_client()

        async def kind(path: str, headers: dict[str, str] | None = None, c=client) -> str:  # type: ignore[no-untyped-def]
            try:
                async with c.websocket(path, headers=headers or {}) as ws:
                    return str(await ws.receive())
            except WebsocketResponseError as error:
                return str(error.response.status_code)

        assert await kind("/zz/probe/stream") == "401"
        assert await kind("/zz/probe/stream", bearer(tokens["access_token"])) == "user"
        assert await kind(f"/zz/probe/stream?access_token={tokens['access_token']}") == "user"
        assert await kind("/zz/probe/stream", bearer("forged")) == "401"
        response = await client.post(
            "/api/v2/auth/login",
            json={"email": "admin@localhost.local", "password": "admin123", "session": True},
        )
        assert response.status_code == 200
        # A cookie upgrade must come from the server's own origin (app/api/origin.py).
        assert await kind("/zz/probe/stream", {"Origin": "http://localhost"}) == "session"
        assert await kind("/zz/probe/stream") == "403"
