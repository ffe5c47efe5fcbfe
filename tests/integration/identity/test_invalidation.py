"""Two control-plane instances on one database: changes on A reach B's caches via Redis."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable

import orjson
import pytest
import redis

from app.factory import create_app
from app.runtime import get_runtime
from tests.integration.identity.conftest import FAST, bearer, login


def _redis_up() -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1).ping())
    except redis.RedisError:
        return False


pytestmark = pytest.mark.skipif(not _redis_up(), reason="Redis is not running on 127.0.0.1:6379")


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 3.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_revocations_and_role_changes_cross_instances(make_settings, sqlite_env) -> None:  # type: ignore[no-untyped-def]
    env = {
        **sqlite_env,
        **FAST,
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "SECRET_KEY": "invalidation-test-" + secrets.token_hex(16),
    }
    a = create_app(make_settings(**env))
    b = create_app(make_settings(**env))
    async with a.test_app(), b.test_app():
        ca, cb = a.test_client(), b.test_client()
        admin = bearer((await login(a))["access_token"])

        async def status_on_b(headers: dict[str, str]) -> int:
            return (await cb.get("/api/v2/me", headers=headers)).status_code

        # A key created on A works on B (B had cached the prefix as unknown first).
        response = await ca.post(
            "/api/v2/clients", json={"name": "x", "scopes": ["stats:read"]}, headers=admin
        )
        key = (await response.get_json())["data"]
        assert await status_on_b(bearer(key["api_key"])) == 200
        # Revoked on A -> refused on B without a restart (B had it cached).
        assert (await ca.delete(f"/api/v2/clients/{key['id']}", headers=admin)).status_code == 200

        async def key_dead() -> bool:
            return await status_on_b(bearer(key["api_key"])) == 401

        assert await _eventually(key_dead)
        # A user logs in on A, is cached on B; demoted on A -> B sees the new scopes.
        await ca.post(
            "/api/v2/users",
            json={"email": "u@x.io", "password": "password-1", "roles": ["maintainer"]},
            headers=admin,
        )
        user = await login(a, "u@x.io", "password-1")
        me = await (await cb.get("/api/v2/me", headers=bearer(user["access_token"]))).get_json()
        assert "rules:write" in me["data"]["scopes"]
        await ca.patch(
            f"/api/v2/users/{me['data']['user_id']}", json={"roles": ["viewer"]}, headers=admin
        )

        async def demoted() -> bool:
            body = await (
                await cb.get("/api/v2/me", headers=bearer(user["access_token"]))
            ).get_json()
            return "rules:write" not in body["data"]["scopes"]

        assert await _eventually(demoted)
        # Logout on A kills the access token on B.
        assert await status_on_b(bearer(user["access_token"])) == 200
        await ca.post("/api/v2/auth/logout", json={}, headers=bearer(user["access_token"]))

        async def logged_out() -> bool:
            return await status_on_b(bearer(user["access_token"])) == 401

        assert await _eventually(logged_out)
        bus = get_runtime(b).components["identity_bus"]
        assert bus.stats["applied"] >= 3 and bus.stats["collapsed"] == 0


async def test_overflowing_backlog_becomes_one_drop_all() -> None:
    """A full publish queue keeps no stale invalidation and loses none: one drop-all."""
    from app.identity.cache import IdentityCache
    from app.identity.invalidation import InvalidationBus

    resyncs: list[int] = []

    async def resync() -> None:
        resyncs.append(1)

    sender_cache, receiver_cache = IdentityCache(), IdentityCache()
    sender = InvalidationBus("redis://127.0.0.1:6379/0", "s", sender_cache, resync, queue_size=2)
    receiver = InvalidationBus("redis://127.0.0.1:6379/0", "s", receiver_cache, resync)
    for prefix in ("k1", "k2", "k3"):  # no publisher running: the third overflows
        sender.publish({"k": "key", "p": prefix})
    assert sender.stats["collapsed"] == 1 and sender._queue.qsize() == 1
    receiver_cache.keys["cached"] = object()  # type: ignore[assignment]
    receiver.apply(orjson.loads(sender._queue.get_nowait()))
    assert receiver_cache.keys == {}  # everything dropped
    await asyncio.sleep(0)
    assert resyncs == [1]  # and reloaded from the database
