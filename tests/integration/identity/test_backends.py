"""The identity flow end to end on each database (SQLite, PostgreSQL, MariaDB)."""

from __future__ import annotations

from collections.abc import Callable

from app.config import Settings
from app.factory import create_app
from app.runtime import get_runtime
from tests.integration.identity.conftest import FAST, bearer, login


async def test_identity_flow_on_backend(
    make_settings: Callable[..., Settings], db_env: dict[str, str]
) -> None:
    app = create_app(make_settings(**db_env, **FAST))
    async with app.test_app():
        client = app.test_client()
        admin = bearer((await login(app))["access_token"])
        body = {
            "email": "émile@example.com",
            "password": "pässword-1",
            "roles": ["viewer"],
            "display_name": "Émile 🚀",
        }
        response = await client.post("/api/v2/users", json=body, headers=admin)
        assert response.status_code == 201, await response.get_json()
        user = (await response.get_json())["data"]
        assert user["display_name"] == "Émile 🚀"  # utf8mb4 end to end
        assert user["active"] is True and user["totp_enabled"] is False  # booleans agree
        assert (await client.post("/api/v2/users", json=body, headers=admin)).status_code == 409
        tokens = await login(app, "émile@example.com", "pässword-1")
        response = await client.post(
            "/api/v2/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert response.status_code == 200
        response = await client.post(
            "/api/v2/clients", json={"name": "k", "scopes": ["stats:read"]}, headers=admin
        )
        key = (await response.get_json())["data"]["api_key"]
        assert (await client.get("/api/v2/me", headers=bearer(key))).status_code == 200
        response = await client.patch(
            f"/api/v2/users/{user['id']}", json={"active": False}, headers=admin
        )
        assert (await response.get_json())["data"]["active"] is False
        listing = await (await client.get("/api/v2/users?active=false", headers=admin)).get_json()
        assert [u["email"] for u in listing["data"]] == ["émile@example.com"]
        # Inputs a database would choke on are refused up front on every backend (4xx, never 500).
        for method, path, payload in [
            ("POST", "/api/v2/users", {"email": "a\x00b@c.d", "password": "password-1"}),
            ("POST", "/api/v2/clients", {"name": "k\x00", "scopes": ["stats:read"]}),
            ("POST", "/api/v2/teams", {"name": "t" * 81}),
            (
                "POST",
                "/api/v2/roles",
                {"name": "r", "scopes": ["stats:read"], "description": "d" * 256},
            ),
            ("GET", "/api/v2/users/99999999999999999999", None),
        ]:
            response = await client.open(path, method=method, json=payload, headers=admin)
            assert 400 <= response.status_code < 500, (path, response.status_code)
        db = get_runtime(app).components["db"]
        count = await db.run(lambda dal: dal(dal.audit_log.action == "login").count())
        assert count == 2
