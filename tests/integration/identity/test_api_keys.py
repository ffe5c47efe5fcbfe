"""API keys: shown once, hashed at rest, cached, and invalidated on revoke/rotate/role change."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from quart import Quart

from app.identity import authenticator, provision_api_key
from app.identity.apikeys import hash_key
from app.identity.records import utcnow
from app.runtime import get_runtime
from tests.integration.identity.conftest import bearer, login


async def _status(app: Quart, key: str, path: str = "/api/v2/me") -> int:
    return (await app.test_client().get(path, headers=bearer(key))).status_code


async def test_create_use_revoke_rotate(identity_app: Quart) -> None:
    admin = bearer((await login(identity_app))["access_token"])
    client = identity_app.test_client()
    response = await client.post(
        "/api/v2/clients", json={"name": "ci", "scopes": ["users:read"]}, headers=admin
    )
    assert response.status_code == 201
    created = (await response.get_json())["data"]
    key = created["api_key"]
    assert key.startswith("floe_") and created["scopes"] == ["users:read"]
    # Stored hashed, never in plaintext.
    db = get_runtime(identity_app).components["db"]
    row = await db.run(lambda dal: dal(dal.api_client.id == created["id"]).select().first())
    assert row.key_hash == hash_key(key) and key not in (row.key_hash, row.key_prefix)
    # Listing never shows the key again.
    listing = await (await client.get("/api/v2/clients", headers=admin)).get_json()
    assert key not in str(listing) and listing["meta"]["total"] >= 2  # + local-dataplane
    # Usable; scopes enforced.
    assert await _status(identity_app, key, "/api/v2/users") == 200
    assert (await client.post("/api/v2/users", json={}, headers=bearer(key))).status_code == 403
    # A wrong secret with a valid prefix is refused.
    assert (
        await _status(identity_app, key[:-3] + ("AAA" if not key.endswith("AAA") else "BBB")) == 401
    )
    # Rotate: the old key stops at once, the new one works.
    response = await client.post(f"/api/v2/clients/{created['id']}/rotate", headers=admin)
    assert response.status_code == 201
    rotated = (await response.get_json())["data"]
    assert await _status(identity_app, key) == 401
    assert await _status(identity_app, rotated["api_key"]) == 200
    # Revoke: refused on the next request (cache invalidated, no waiting).
    response = await client.delete(f"/api/v2/clients/{rotated['id']}", headers=admin)
    assert response.status_code == 200
    assert await _status(identity_app, rotated["api_key"]) == 401


async def test_hot_path_has_no_db_round_trip_and_last_used_is_batched(identity_app: Quart) -> None:
    key = await provision_api_key(identity_app, "probe", ["stats:read"])
    runtime = get_runtime(identity_app)
    db = runtime.components["db"]
    assert await _status(identity_app, key) == 200
    before = db.stats.units
    for _ in range(20):
        assert await _status(identity_app, key) == 200
    assert db.stats.units == before  # authenticated from memory
    recorder = runtime.components["identity_recorder"]
    await recorder.flush()
    used = await db.run(
        lambda dal: dal(dal.api_client.name == "probe").select().first().last_used_at
    )
    assert used is not None


async def test_expiry_and_bad_input(identity_app: Quart, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = bearer((await login(identity_app))["access_token"])
    client = identity_app.test_client()
    soon = datetime.now(UTC) + timedelta(hours=1)
    key = await provision_api_key(identity_app, "short", ["stats:read"], soon.replace(tzinfo=None))
    assert await _status(identity_app, key) == 200
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    for body, status in [
        ({"name": "x", "scopes": ["nope:read"]}, 422),
        ({"name": "x", "scopes": "users:read"}, 422),
        ({"name": "x" * 200, "scopes": ["users:read"]}, 422),
        ({"scopes": ["users:read"]}, 422),
        ({"name": "x", "scopes": ["users:read"], "expires_at": past}, 422),
        ({"name": "x", "scopes": ["users:read"], "expires_at": "tomorrow"}, 422),
    ]:
        response = await client.post("/api/v2/clients", json=body, headers=admin)
        assert response.status_code == status, (body, await response.get_json())
    # The cached key is checked against the clock on every use: move the clock past expiry.
    later = utcnow() + timedelta(hours=2)
    monkeypatch.setattr(authenticator, "utcnow", lambda: later)
    assert await _status(identity_app, key) == 401


async def test_owner_role_change_shrinks_key(identity_app: Quart) -> None:
    admin = bearer((await login(identity_app))["access_token"])
    client = identity_app.test_client()
    response = await client.post(
        "/api/v2/users",
        json={"email": "m@example.com", "password": "password-1", "roles": ["maintainer"]},
        headers=admin,
    )
    user_id = (await response.get_json())["data"]["id"]
    maint = bearer((await login(identity_app, "m@example.com", "password-1"))["access_token"])
    # A maintainer cannot mint a key with scopes it lacks.
    response = await client.post(
        "/api/v2/clients", json={"name": "k", "scopes": ["users:read"]}, headers=maint
    )
    assert response.status_code == 403
    response = await client.post(
        "/api/v2/clients", json={"name": "k", "scopes": ["rules:write"]}, headers=maint
    )
    key = (await response.get_json())["data"]["api_key"]
    assert (await client.get("/api/v2/me", headers=bearer(key))).status_code == 200
    me = await (await client.get("/api/v2/me", headers=bearer(key))).get_json()
    assert me["data"]["scopes"] == ["rules:write"]
    # Demote the owner to viewer: the key keeps only scopes the owner still holds (none).
    response = await client.patch(
        f"/api/v2/users/{user_id}", json={"roles": ["viewer"]}, headers=admin
    )
    assert response.status_code == 200
    me = await (await client.get("/api/v2/me", headers=bearer(key))).get_json()
    assert me["data"]["scopes"] == []
    db = get_runtime(identity_app).components["db"]
    changes = await db.run(
        lambda dal: dal(dal.audit_log.action == "role_change").select().as_list()
    )
    assert changes[-1]["target"] == f"user:{user_id}" and '"viewer"' in changes[-1]["details"]
    # The maintainer may not rotate someone else's key.
    other = (await (await client.get("/api/v2/clients", headers=admin)).get_json())["data"][0]["id"]
    response = await client.post(f"/api/v2/clients/{other}/rotate", headers=maint)
    assert response.status_code == 403


async def test_local_dataplane_key_file(identity_app: Quart, make_settings, sqlite_env) -> None:  # type: ignore[no-untyped-def]
    path = Path(get_runtime(identity_app).settings.data_dir) / "dataplane.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    key = path.read_text().strip()
    me = await (await identity_app.test_client().get("/api/v2/me", headers=bearer(key))).get_json()
    assert me["data"]["scopes"] == ["dataplane:write"]


async def test_last_used_flushed_at_shutdown(make_settings, sqlite_env) -> None:  # type: ignore[no-untyped-def]
    from app.factory import create_app
    from tests.integration.identity.conftest import FAST

    settings = make_settings(**sqlite_env, **FAST, FLOE_KEY_TOUCH_INTERVAL="3600")
    app = create_app(settings)
    async with app.test_app():
        key = await provision_api_key(app, "flush-me", ["stats:read"])
        assert await _status(app, key) == 200
    again = create_app(settings)
    async with again.test_app():
        db = get_runtime(again).components["db"]
        used = await db.run(
            lambda dal: dal(dal.api_client.name == "flush-me").select().first().last_used_at
        )
        assert used is not None
