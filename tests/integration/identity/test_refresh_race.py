"""Refresh-token rotation under a race (issue 10 item 6): N synchronised uses of one refresh
token — exactly one wins, the others count as reuse and revoke the family, on SQLite,
PostgreSQL and MariaDB. Driven through a real `floe serve` per backend (parallel HTTP), and
through the service's worker threads directly (no HTTP in between).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.factory import create_app
from app.runtime import get_runtime
from tests.integration.identity.attacker import ADMIN, from_source, login, start_server
from tests.integration.identity.conftest import FAST
from tests.support.databases import BACKENDS, fresh_database

PARALLEL = 10
ROUNDS = 5


@pytest.fixture(params=BACKENDS)
def backend_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    yield from fresh_database(str(request.param), tmp_path)


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v2/auth/refresh", json={"refresh_token": token})


async def test_one_refresh_token_wins_once_over_http(backend_env: dict[str, str]) -> None:
    with start_server(backend_env) as server:
        async with from_source(server) as client:
            for _ in range(ROUNDS):
                tokens = (await login(client, *ADMIN)).body["data"]
                answers = await asyncio.wait_for(
                    asyncio.gather(
                        *(_refresh(client, tokens["refresh_token"]) for _ in range(PARALLEL))
                    ),
                    60.0,
                )
                statuses = sorted(a.status_code for a in answers)
                assert statuses == [200] + [401] * (PARALLEL - 1), statuses
                winner = next(a.json()["data"] for a in answers if a.status_code == 200)
                # The losers were reuse: the whole family is dead, the winner's tokens too.
                assert (await _refresh(client, winner["refresh_token"])).status_code == 401
                me = await client.get(
                    "/api/v2/me", headers={"Authorization": f"Bearer {winner['access_token']}"}
                )
                assert me.status_code == 401
            admin = (await login(client, *ADMIN)).body["data"]["access_token"]
            audit = await client.get(
                "/api/v2/audit?action=refresh_reuse&limit=200",
                headers={"Authorization": f"Bearer {admin}"},
            )
            # Every round was caught as reuse (later losers may find the family already dead).
            assert ROUNDS <= audit.json()["meta"]["total"] <= ROUNDS * (PARALLEL - 1)


async def test_one_refresh_token_wins_once_in_worker_threads(
    make_settings: Callable[..., Settings], backend_env: dict[str, str]
) -> None:
    app = create_app(make_settings(**backend_env, **FAST, DB_POOL_SIZE=str(PARALLEL)))
    async with app.test_app():
        service = get_runtime(app).components["identity"]
        for _ in range(ROUNDS):
            pair = await service.login(*ADMIN, None, "127.0.0.1")
            results = await asyncio.gather(
                *(service.refresh(pair.refresh_token, "127.0.0.1") for _ in range(PARALLEL)),
                return_exceptions=True,
            )
            winners = [r for r in results if not isinstance(r, BaseException)]
            errors = [r for r in results if isinstance(r, BaseException)]
            assert len(winners) == 1, results
            assert all(getattr(e, "status", None) == 401 for e in errors), errors
            db = get_runtime(app).components["db"]
            family = pair.family
            live = await db.run(
                lambda dal, family=family: dal(
                    (dal.refresh_token.family_id == family)
                    & (dal.refresh_token.revoked_at == None)  # noqa: E711
                ).count()
            )
            assert live == 0
