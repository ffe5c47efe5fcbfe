"""Users, roles, teams over REST: validation, conflicts, escalation and audit."""

from __future__ import annotations

import logging
import re

import pyotp
import pytest
from quart import Quart

from app.runtime import get_runtime
from tests.integration.identity.conftest import bearer, login


async def _admin(app: Quart) -> dict[str, str]:
    return bearer((await login(app))["access_token"])


async def _audit(app: Quart) -> list[str]:
    db = get_runtime(app).components["db"]
    actions: list[str] = await db.run(
        lambda dal: [r.action for r in dal(dal.audit_log.id > 0).select()]
    )
    return actions


async def test_user_crud_and_validation(identity_app: Quart) -> None:
    admin = await _admin(identity_app)
    client = identity_app.test_client()
    body = {"email": "Viewer@Example.com", "password": "password-1", "roles": ["viewer"]}
    response = await client.post("/api/v2/users", json=body, headers=admin)
    assert response.status_code == 201
    user = (await response.get_json())["data"]
    assert user["email"] == "viewer@example.com" and user["roles"] == ["viewer"]
    assert "password_hash" not in user
    # Duplicate email (any case) -> 409.
    response = await client.post(
        "/api/v2/users", json={**body, "email": "viewer@example.COM"}, headers=admin
    )
    assert response.status_code == 409
    for bad in [
        {},
        {"email": "x@y.z"},
        {"email": 5, "password": "password-1"},
        {"email": "x@y.z", "password": "short"},
        {"email": "x@y.z", "password": "p" * 300},
        {"email": "x" * 260 + "@y.zz", "password": "password-1"},
        {"email": "not-an-email", "password": "password-1"},
        {"email": "x@y.z", "password": "password-1", "roles": "viewer"},
        {"email": "x@y.z", "password": "password-1", "roles": ["no-such-role"]},
        {"email": "x@y.z", "password": "password-1", "admin": True},
    ]:
        response = await client.post("/api/v2/users", json=bad, headers=admin)
        assert response.status_code == 422, (bad, await response.get_json())
    # Not JSON at all.
    response = await client.post(
        "/api/v2/users", data="{oops", headers={**admin, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    # Filtering and pagination.
    listing = await (
        await client.get("/api/v2/users?role=viewer&limit=1", headers=admin)
    ).get_json()
    assert listing["meta"]["total"] == 1 and listing["data"][0]["email"] == "viewer@example.com"
    # Update, deactivate (tokens stop), delete.
    viewer_token = (await login(identity_app, "viewer@example.com", "password-1"))["access_token"]
    assert (await client.get("/api/v2/me", headers=bearer(viewer_token))).status_code == 200
    response = await client.patch(
        f"/api/v2/users/{user['id']}", json={"active": False}, headers=admin
    )
    assert response.status_code == 200
    assert (await client.get("/api/v2/me", headers=bearer(viewer_token))).status_code == 401
    assert (
        await client.patch("/api/v2/users/9999", json={"active": False}, headers=admin)
    ).status_code == 404
    assert (await client.delete(f"/api/v2/users/{user['id']}", headers=admin)).status_code == 200
    assert (await client.get(f"/api/v2/users/{user['id']}", headers=admin)).status_code == 404
    actions = await _audit(identity_app)
    assert {"user_create", "user_deactivate", "user_delete", "login"} <= set(actions)


@pytest.mark.parametrize(
    "query", ["limit=5000", "limit=abc", "offset=-1", "active=maybe", "bogus=1"]
)
async def test_bad_querystring_is_422(identity_app: Quart, query: str) -> None:
    admin = await _admin(identity_app)
    response = await identity_app.test_client().get(f"/api/v2/users?{query}", headers=admin)
    assert response.status_code == 422, await response.get_json()


async def test_no_privilege_escalation(identity_app: Quart) -> None:
    admin = await _admin(identity_app)
    client = identity_app.test_client()
    await client.post(
        "/api/v2/roles", json={"name": "user-manager", "scopes": ["users:write"]}, headers=admin
    )
    await client.post(
        "/api/v2/users",
        json={"email": "um@example.com", "password": "password-1", "roles": ["user-manager"]},
        headers=admin,
    )
    um = bearer((await login(identity_app, "um@example.com", "password-1"))["access_token"])
    response = await client.post(
        "/api/v2/users",
        json={"email": "evil@example.com", "password": "password-1", "roles": ["admin"]},
        headers=um,
    )
    assert response.status_code == 403
    response = await client.post(
        "/api/v2/users",
        json={"email": "ok@example.com", "password": "password-1", "roles": []},
        headers=um,
    )
    assert response.status_code == 201


async def test_roles_and_teams(identity_app: Quart) -> None:
    admin = await _admin(identity_app)
    client = identity_app.test_client()
    response = await client.post(
        "/api/v2/roles",
        json={"name": "rule-editor", "scopes": ["rules:write", "stats:read"]},
        headers=admin,
    )
    assert response.status_code == 201
    role = (await response.get_json())["data"]
    assert (
        await client.post(
            "/api/v2/roles", json={"name": "rule-editor", "scopes": []}, headers=admin
        )
    ).status_code == 409
    response = await client.post(
        "/api/v2/roles", json={"name": "bad", "scopes": ["rules:fly"]}, headers=admin
    )
    assert response.status_code == 422
    assert (await response.get_json())["error"]["details"] == {"unknown": ["rules:fly"]}
    builtin = (await (await client.get("/api/v2/roles?level=global", headers=admin)).get_json())[
        "data"
    ]
    assert {r["name"] for r in builtin} >= {"admin", "maintainer", "viewer", "rule-editor"}
    admin_role = next(r for r in builtin if r["name"] == "admin")
    response = await client.get(f"/api/v2/roles/{admin_role['id']}", headers=admin)
    assert (await response.get_json())["data"] == admin_role
    assert (await client.get("/api/v2/roles/99999", headers=admin)).status_code == 404
    assert (
        await client.delete(f"/api/v2/roles/{admin_role['id']}", headers=admin)
    ).status_code == 409
    # A user holding the custom role; changing the role's scopes applies at once.
    await client.post(
        "/api/v2/users",
        json={"email": "r@example.com", "password": "password-1", "roles": ["rule-editor"]},
        headers=admin,
    )
    token = bearer((await login(identity_app, "r@example.com", "password-1"))["access_token"])
    me = (await (await client.get("/api/v2/me", headers=token)).get_json())["data"]
    assert me["scopes"] == ["rules:write", "stats:read"]
    response = await client.patch(
        f"/api/v2/roles/{role['id']}", json={"scopes": ["rules:read"]}, headers=admin
    )
    assert response.status_code == 200
    me = (await (await client.get("/api/v2/me", headers=token)).get_json())["data"]
    assert me["scopes"] == ["rules:read"]
    # Teams and members.
    response = await client.post("/api/v2/teams", json={"name": "noc"}, headers=admin)
    assert response.status_code == 201
    team = (await response.get_json())["data"]
    assert (
        await client.post("/api/v2/teams", json={"name": "noc"}, headers=admin)
    ).status_code == 409
    response = await client.put(
        f"/api/v2/teams/{team['id']}/members/{me['user_id']}",
        json={"role": "team_maintainer"},
        headers=admin,
    )
    assert response.status_code == 200
    assert (await response.get_json())["data"]["members"][0]["role"] == "team_maintainer"
    response = await client.put(
        f"/api/v2/teams/{team['id']}/members/{me['user_id']}", json={"role": "admin"}, headers=admin
    )
    assert response.status_code == 422
    me = (await (await client.get("/api/v2/me", headers=token)).get_json())["data"]
    assert me["teams"] == [team["id"]]
    assert (
        await client.delete(f"/api/v2/teams/{team['id']}/members/{me['user_id']}", headers=admin)
    ).status_code == 200
    assert (await client.delete(f"/api/v2/teams/{team['id']}", headers=admin)).status_code == 200
    # Resource-level grant.
    response = await client.post(
        f"/api/v2/users/{me['user_id']}/grants",
        json={"role": "editor", "resource_type": "node", "resource_id": "edge-1"},
        headers=admin,
    )
    assert response.status_code == 201
    grants = (
        await (await client.get(f"/api/v2/users/{me['user_id']}/grants", headers=admin)).get_json()
    )["data"]
    assert grants[0]["resource_id"] == "edge-1"
    assert {"role_create", "role_update", "team_create", "team_member_set", "grant_add"} <= set(
        await _audit(identity_app)
    )


async def test_password_change_kills_old_tokens(identity_app: Quart) -> None:
    client = identity_app.test_client()
    tokens = await login(identity_app)
    headers = bearer(tokens["access_token"])
    response = await client.post(
        "/api/v2/me/password",
        json={"current_password": "nope", "new_password": "new-password-1"},
        headers=headers,
    )
    assert response.status_code == 403
    response = await client.post(
        "/api/v2/me/password",
        json={"current_password": "admin123", "new_password": "new-password-1"},
        headers=headers,
    )
    assert response.status_code == 200
    assert (await client.get("/api/v2/me", headers=headers)).status_code == 401
    assert (
        await client.post("/api/v2/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).status_code == 401
    fresh = await login(identity_app, password="new-password-1")
    assert (
        await client.get("/api/v2/me", headers=bearer(fresh["access_token"]))
    ).status_code == 200
    assert "password_change" in await _audit(identity_app)


def _link_token(caplog: pytest.LogCaptureFixture) -> str:
    match = re.search(r"token=([A-Za-z0-9_.\-]+)", caplog.text)
    assert match, caplog.text
    return match.group(1)


async def test_password_reset_single_use(
    identity_app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.identity.mailer")
    client = identity_app.test_client()
    response = await client.post(
        "/api/v2/auth/password-reset", json={"email": "admin@localhost.local"}
    )
    assert response.status_code == 202
    # Unknown email: same answer, no mail.
    assert (
        await client.post("/api/v2/auth/password-reset", json={"email": "nobody@x.io"})
    ).status_code == 202
    token = _link_token(caplog)
    assert "admin123" not in caplog.text
    body = {"token": token, "password": "reset-password-1"}
    assert (await client.post("/api/v2/auth/password-reset/confirm", json=body)).status_code == 200
    assert (await client.post("/api/v2/auth/password-reset/confirm", json=body)).status_code == 400
    bad = {"token": token[:-2] + "xx", "password": "reset-password-1"}
    assert (await client.post("/api/v2/auth/password-reset/confirm", json=bad)).status_code == 400
    await login(identity_app, password="reset-password-1")


async def test_password_reset_requests_are_rate_limited(identity_app: Quart) -> None:
    client = identity_app.test_client()
    statuses = [
        (
            await client.post("/api/v2/auth/password-reset", json={"email": "nobody@x.io"})
        ).status_code
        for _ in range(11)
    ]
    assert statuses[:10] == [202] * 10 and statuses[10] == 429


async def test_registration_off_by_default(identity_app: Quart) -> None:
    response = await identity_app.test_client().post(
        "/api/v2/auth/register", json={"email": "new@example.com", "password": "password-1"}
    )
    assert response.status_code == 403


async def test_registration_and_confirmation(make_settings, sqlite_env, caplog) -> None:  # type: ignore[no-untyped-def]
    from app.factory import create_app
    from tests.integration.identity.conftest import FAST

    caplog.set_level(logging.INFO, logger="app.identity.mailer")
    app = create_app(make_settings(**sqlite_env, **FAST, REGISTRATION_ENABLED="true"))
    async with app.test_app():
        client = app.test_client()
        body = {"email": "new@example.com", "password": "password-1"}
        response = await client.post("/api/v2/auth/register", json=body)
        assert response.status_code == 201
        assert (await response.get_json())["data"]["confirmed"] is False
        assert (await client.post("/api/v2/auth/register", json=body)).status_code == 409
        token = _link_token(caplog)
        response = await client.post("/api/v2/auth/login", json=body)
        assert response.status_code == 403  # not confirmed yet
        assert (await client.get(f"/api/v2/auth/confirm?token={token}")).status_code == 200
        assert (await client.post("/api/v2/auth/confirm", json={"token": token})).status_code == 400
        tokens = await login(app, "new@example.com", "password-1")
        me = await (
            await client.get("/api/v2/me/profile", headers=bearer(tokens["access_token"]))
        ).get_json()
        assert me["data"]["confirmed"] is True and me["data"]["roles"] == ["viewer"]


async def test_totp_enrol_login_recovery_disable(identity_app: Quart) -> None:
    client = identity_app.test_client()
    headers = bearer((await login(identity_app))["access_token"])
    response = await client.post("/api/v2/me/2fa/totp", headers=headers)
    assert response.status_code == 201
    enrol = (await response.get_json())["data"]
    assert enrol["otpauth_uri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(enrol["secret"])
    assert (
        await client.post("/api/v2/me/2fa/totp/verify", json={"code": "000000"}, headers=headers)
    ).status_code == 422
    response = await client.post(
        "/api/v2/me/2fa/totp/verify", json={"code": totp.now()}, headers=headers
    )
    assert response.status_code == 200
    codes = (await response.get_json())["data"]["recovery_codes"]
    assert len(codes) == 10
    # Login now needs the second factor.
    creds = {"email": "admin@localhost.local", "password": "admin123"}
    response = await client.post("/api/v2/auth/login", json=creds)
    assert (
        response.status_code == 401
        and (await response.get_json())["error"]["code"] == "totp_required"
    )
    assert (
        await client.post("/api/v2/auth/login", json={**creds, "totp_code": "123456"})
    ).status_code == 401
    await login(identity_app, totp_code=totp.now())
    # A recovery code works once.
    await login(identity_app, totp_code=codes[0])
    assert (
        await client.post("/api/v2/auth/login", json={**creds, "totp_code": codes[0]})
    ).status_code == 401
    # Disable needs a code.
    assert (await client.delete("/api/v2/me/2fa/totp", headers=headers)).status_code == 422
    response = await client.delete("/api/v2/me/2fa/totp", json={"code": codes[1]}, headers=headers)
    assert response.status_code == 200
    await login(identity_app)
    actions = await _audit(identity_app)
    assert {"totp_enrol", "totp_enable", "totp_disable"} <= set(actions)


async def test_api_key_cannot_use_me_password(identity_app: Quart) -> None:
    from app.identity import provision_api_key

    key = await provision_api_key(identity_app, "k", ["users:read"])
    response = await identity_app.test_client().post("/api/v2/me/2fa/totp", headers=bearer(key))
    assert response.status_code == 403
