"""Rule sets are committed before they are acknowledged and survive a control-plane restart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.config import Settings
from app.factory import create_app
from app.ingest import get_ingest
from app.ingest.rule_store import HISTORY
from app.ingest.rules import FilterRuleSet, Rule, to_proto
from app.runtime import get_runtime
from tests.integration.identity.conftest import FAST, bearer, login

RULES: dict[str, Any] = {
    "default_action": "deny",
    "rules": [
        {"id": 1, "action": "allow", "src": "192.0.2.0/24"},
        {"id": 2, "action": "deny", "dst": "2001:db8::/32"},
        {"id": 3, "action": "allow", "port": 443, "proto": "tcp"},
        {"id": 4, "action": "deny", "proto": "icmp"},
        {"id": 5, "action": "deny", "port": 5000, "direction": "src"},
    ],
}


async def test_rule_set_survives_a_restart(make_settings: Callable[..., Settings],
                                           db_env: dict[str, str]) -> None:
    settings = make_settings(**db_env, **FAST)
    app = create_app(settings)
    async with app.test_app():
        client = app.test_client()
        admin = bearer((await login(app))["access_token"])
        response = await client.put("/api/v2/rules", json=RULES, headers=admin)
        assert response.status_code == 200, await response.get_json()
        first = (await response.get_json())["data"]
        assert first["generation"] == 1
        response = await client.put("/api/v2/rules", json=RULES, headers=admin)
        assert (await response.get_json())["data"]["generation"] == 2

    restarted = create_app(settings)  # a new process would see exactly this database
    async with restarted.test_app():
        client = restarted.test_client()
        admin = bearer((await login(restarted))["access_token"])
        body = await (await client.get("/api/v2/rules", headers=admin)).get_json()
        assert body["data"]["generation"] == 2
        assert body["data"]["default_action"] == "deny"
        assert body["data"]["rules"] == [
            {"id": 1, "action": "allow", "src": "192.0.2.0/24"},
            {"id": 2, "action": "deny", "dst": "2001:db8::/32"},
            {"id": 3, "action": "allow", "port": 443, "proto": "tcp", "direction": "dst"},
            {"id": 4, "action": "deny", "proto": "icmp"},
            {"id": 5, "action": "deny", "port": 5000, "direction": "src"},
        ]
        # what a dataplane connecting now is sent: the whole set, field for field
        pushed = get_ingest(restarted).rules
        stored = [Rule(**rule) for rule in RULES["rules"]]
        assert pushed == to_proto(FilterRuleSet(2, "deny", stored))
        response = await client.put("/api/v2/rules", json={"rules": []}, headers=admin)
        assert (await response.get_json())["data"]["generation"] == 3  # the count goes on


async def test_invalid_rule_stores_nothing(make_settings: Callable[..., Settings],
                                           sqlite_env: dict[str, str]) -> None:
    app = create_app(make_settings(**sqlite_env, **FAST))
    async with app.test_app():
        client = app.test_client()
        admin = bearer((await login(app))["access_token"])
        bad = {"rules": [{"id": 1, "action": "deny", "port": 53, "proto": "icmp"}]}
        response = await client.put("/api/v2/rules", json=bad, headers=admin)
        assert response.status_code == 422
        assert (await response.get_json())["error"]["code"] == "invalid_rule"
        db = get_runtime(app).components["db"]
        assert await db.run(lambda dal: dal(dal.rule_set).count()) == 0
        assert get_ingest(app).rules is None  # nothing pushed


async def test_history_is_pruned(make_settings: Callable[..., Settings],
                                 sqlite_env: dict[str, str]) -> None:
    app = create_app(make_settings(**sqlite_env, **FAST))
    async with app.test_app():
        client = app.test_client()
        admin = bearer((await login(app))["access_token"])
        for _ in range(HISTORY + 3):
            response = await client.put("/api/v2/rules", json=RULES, headers=admin)
            assert response.status_code == 200
        db = get_runtime(app).components["db"]
        generations = await db.run(
            lambda dal: [r.generation for r in dal(dal.rule_set).select(dal.rule_set.generation)])
        assert sorted(generations) == list(range(4, HISTORY + 4))


async def test_database_outage_is_503_and_nothing_is_pushed(
        make_settings: Callable[..., Settings], sqlite_env: dict[str, str]) -> None:
    app = create_app(make_settings(**sqlite_env, **FAST))
    async with app.test_app():
        client = app.test_client()
        admin = bearer((await login(app))["access_token"])
        db = get_runtime(app).components["db"]
        await db.close()  # the database is gone: every unit of work is refused
        try:
            response = await client.put("/api/v2/rules", json=RULES, headers=admin)
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "1"
            assert (await response.get_json())["error"]["code"] == "database_unavailable"
            assert get_ingest(app).rules is None
        finally:
            await db.start()


async def test_a_stored_set_that_no_longer_validates_does_not_stop_start_up(
        make_settings: Callable[..., Settings], sqlite_env: dict[str, str]) -> None:
    settings = make_settings(**sqlite_env, **FAST)
    app = create_app(settings)
    async with app.test_app():
        db = get_runtime(app).components["db"]
        await db.run(lambda dal: dal.rule_set.insert(  # as an older version might have stored
            generation=7, default_action="deny",
            rules='[{"id": 1, "action": "deny", "port": 53, "proto": "icmp"}]'))
    restarted = create_app(settings)
    async with restarted.test_app():
        client = restarted.test_client()
        admin = bearer((await login(restarted))["access_token"])
        body = await (await client.get("/api/v2/rules", headers=admin)).get_json()
        assert body["data"]["generation"] == 7  # shown, so an operator can see and replace it
        assert get_ingest(restarted).rules is None  # but not pushed to any dataplane
        response = await client.put("/api/v2/rules", json=RULES, headers=admin)
        assert (await response.get_json())["data"]["generation"] == 8


async def test_rules_the_dataplane_would_refuse_are_422_and_not_stored(
        make_settings: Callable[..., Settings], sqlite_env: dict[str, str]) -> None:
    """The control plane applies app.rulespec, the dataplane's own checks (one definition)."""
    app = create_app(make_settings(**sqlite_env, **FAST))
    async with app.test_app():
        client = app.test_client()
        admin = bearer((await login(app))["access_token"])
        refused = [
            [{"id": 1, "action": "deny", "src": "10.0.0.0/8", "proto": "tcp"}],  # was broadened
            [{"id": 1, "action": "deny", "dst": "10.0.0.0/8"},
             {"id": 2, "action": "deny", "dst": "10.1.2.3/8"}],  # the same match twice
            [{"id": 1, "action": "deny", "port": 53},
             {"id": 2, "action": "allow", "port": 53, "proto": "udp"}],
            [{"id": i + 1, "action": "deny", "proto": str(i)} for i in range(256)]
            + [{"id": 999, "action": "deny", "port": 1}],  # fine: 256 protocols fit
        ]
        for rules in refused[:3]:
            response = await client.put("/api/v2/rules", json={"rules": rules}, headers=admin)
            assert response.status_code == 422, rules
            assert (await response.get_json())["error"]["code"] == "invalid_rule"
        response = await client.put("/api/v2/rules", json={"rules": refused[3]}, headers=admin)
        assert response.status_code == 200
        response = await client.put("/api/v2/rules", json={"rules": [
            {"id": 1, "action": "deny", "proto": "sctp"}]}, headers=admin)
        assert response.status_code == 200  # every protocol name the dataplane knows
        body = await (await client.get("/api/v2/rules", headers=admin)).get_json()
        assert body["data"]["generation"] == 2
