"""`GET /audit` on each database: what identity and rule changes left, newest first, filtered,
paginated; admins only; bad queries are a 422."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from app.config import Settings
from app.factory import create_app
from tests.integration.identity.conftest import FAST, bearer, login


async def test_audit_log_records_and_serves_changes(make_settings: Callable[..., Settings],
                                                    db_env: dict[str, str]) -> None:
    app = create_app(make_settings(**db_env, **FAST))
    async with app.test_app():
        client = app.test_client()
        tokens = await login(app)
        admin = bearer(tokens["access_token"])
        start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=1)

        async def audit(query: str = "", headers: dict[str, str] = admin) -> tuple[int, Any]:
            response = await client.get(f"/api/v2/audit{query}", headers=headers)
            return response.status_code, await response.get_json()

        response = await client.post("/api/v2/users", headers=admin, json={
            "email": "ops@example.com", "password": "password-1", "roles": ["viewer"]})
        assert response.status_code == 201
        user_id = (await response.get_json())["data"]["id"]
        bad = await client.post("/api/v2/auth/login",
                                json={"email": "ops@example.com", "password": "wrong-pass"})
        assert bad.status_code == 401
        rules = {"default_action": "allow",
                 "rules": [{"id": 1, "action": "deny", "src": "192.0.2.0/24"}]}
        response = await client.put("/api/v2/rules", json=rules, headers=admin)
        assert response.status_code == 200

        status, body = await audit()
        assert status == 200
        actions = [entry["action"] for entry in body["data"]]
        assert actions[:3] == ["rules_replace", "login_failed", "user_create"]
        assert body["meta"]["total"] == len(actions) and body["meta"]["offset"] == 0
        newest = body["data"][0]
        admin_id = (await (await client.get("/api/v2/me", headers=admin)).get_json())["data"][
            "user_id"]
        assert newest["target"] == "rule_set:1" and newest["success"] is True
        assert newest["actor_user_id"] == admin_id and newest["actor_client_id"] is None
        assert newest["details"] == {"rules": 1, "default_action": "allow"}
        assert newest["ip"]  # the peer address of the PUT
        assert body["data"][1]["success"] is False
        ids = [entry["id"] for entry in body["data"]]
        assert ids == sorted(ids, reverse=True)

        # Filters combine; pagination counts what matches.
        status, body = await audit("?action=user_create")
        assert [e["target"] for e in body["data"]] == [f"user:{user_id}"]
        status, body = await audit(f"?actor_user_id={admin_id}&action=rules_replace")
        assert [e["target"] for e in body["data"]] == ["rule_set:1"]
        status, body = await audit("?target=rule_set:1")
        assert body["meta"]["total"] == 1
        status, body = await audit("?limit=1&offset=1")
        assert [e["action"] for e in body["data"]] == ["login_failed"]
        meta = body["meta"]
        assert (meta["offset"], meta["limit"], meta["total"]) == (1, 1, len(actions))
        since = start.isoformat().replace("+00:00", "Z")
        status, body = await audit(f"?since={since}")
        assert status == 200 and body["meta"]["total"] == len(actions)
        later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
        status, body = await audit("?since=" + later.replace("+", "%2B"))
        assert status == 200 and body["data"] == []

        # Bad input is a 422 with the error envelope, never a 500.
        for query in ("?limit=0", "?limit=201", "?offset=-1", "?since=yesterday",
                      "?actor_user_id=0", "?actor_user_id=x", "?action=", "?nope=1",
                      "?since=0001-01-01T00:00:00%2B01:00"):  # before year 1 in UTC
            status, body = await audit(query)
            assert status == 422, (query, body)
            assert body["error"]["code"], query

        # Viewers (no audit:read) are refused.
        viewer = bearer((await login(app, "ops@example.com", "password-1"))["access_token"])
        status, body = await audit(headers=viewer)
        assert (status, body["error"]["code"]) == (403, "insufficient_scope")
