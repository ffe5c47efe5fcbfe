"""Password guessing against a real `floe serve`, as an attacker would do it: parallel
bursts, many source addresses, an account of one's own to reset counters with, and probing
which emails exist (issue 10 items 4, 5, 7 and the operator's way back in, item 22).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.identity.attacker import (
    ADMIN,
    burst,
    from_source,
    login,
    start_server,
)
from tests.support.databases import BACKENDS, fresh_database
from tests.support.server import PYTHON, REPO_ROOT, FloeServer

WRONG = "not-the-password"


async def test_a_parallel_burst_is_counted_before_the_verify() -> None:
    with start_server() as server:
        async with from_source(server, "127.0.0.1") as attacker:
            answers = await burst(attacker, [(ADMIN[0], WRONG)] * 40)
            statuses = [a.status for a in answers]
            # Five guesses per account and source are verified; the rest never reach argon2.
            assert statuses.count(401) == 5, statuses
            assert statuses.count(429) == 35, statuses
            assert all(int(a.headers["Retry-After"]) > 0 for a in answers if a.status == 429)
            # The right password from the same source is refused too, until the window ends.
            assert (await login(attacker, *ADMIN)).status == 429
        # ...but the lockout is not a weapon: the admin elsewhere still gets in.
        async with from_source(server, "127.0.0.2") as admin:
            answer = await login(admin, *ADMIN)
            assert answer.status == 200, answer.body


async def test_a_success_does_not_wipe_other_failures() -> None:
    with start_server() as server:
        async with from_source(server, "127.0.0.9") as admin:
            token = (await login(admin, *ADMIN)).body["data"]["access_token"]
            response = await admin.post(
                "/api/v2/users",
                json={"email": "mallory@example.com", "password": "mallory-pass-1",
                      "roles": ["viewer"]},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 201, response.text
        async with from_source(server, "127.0.0.3") as attacker:
            guesses: list[int] = []
            own: list[int] = []
            for i in range(30):
                # The attacker's own login between guesses must not reset the address's count.
                own.append((await login(attacker, "mallory@example.com", "mallory-pass-1")).status)
                guesses.append((await login(attacker, f"user{i}@example.com", WRONG)).status)
            assert guesses[:20] == [401] * 20, guesses
            assert guesses[20:] == [429] * 10, guesses
            assert own[:20] == [200] * 20 and set(own[20:]) == {429}, own


async def test_unknown_and_locked_accounts_look_the_same() -> None:
    with start_server() as server:
        async with from_source(server, "127.0.0.5") as warm:  # every database worker thread
            await burst(warm, [(f"warm{i}@example.com", WRONG) for i in range(10)])
        async with from_source(server, "127.0.0.4") as attacker:
            known, unknown = [], []
            for _ in range(8):  # interleaved, so both see the same server conditions
                known.append(await login(attacker, ADMIN[0], WRONG))
                unknown.append(await login(attacker, "nobody@example.com", WRONG))
            # Same statuses, codes and messages, in the same order, for both.
            assert [a.status for a in known] == [401] * 5 + [429] * 3
            assert [(a.status, a.code, a.body["error"]["message"]) for a in known] == [
                (a.status, a.code, a.body["error"]["message"]) for a in unknown
            ]
            assert all("Retry-After" in a.headers for a in known[5:] + unknown[5:])
            # Same timing: a verify for both while guesses count, none once refused.
            for status in (401, 429):
                k = statistics.median(a.seconds for a in known if a.status == status)
                u = statistics.median(a.seconds for a in unknown if a.status == status)
                assert abs(k - u) < max(0.02, 0.5 * max(k, u)), (status, k, u)


def _users_cli(server: FloeServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(server.env)
    return subprocess.run(
        [str(PYTHON), "-m", "app.cli", "users", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_account_ceiling_holds_across_sources_and_restarts(tmp_path: Path) -> None:
    env = {"FLOE_DATA_DIR": str(tmp_path / "data"), "FLOE_LOGIN_MAX_PER_ACCOUNT": "8"}
    with start_server(env) as server:
        for target in (ADMIN[0], "ghost@example.com"):
            for n in range(4):  # 4 sources x 2 guesses: nobody hits the per-source limit
                async with from_source(server, f"127.0.1.{n + 1}") as attacker:
                    answers = [await login(attacker, target, WRONG) for _ in range(2)]
                    assert [a.status for a in answers] == [401, 401], target
        async with from_source(server, "127.0.2.1") as fresh:
            locked = await login(fresh, *ADMIN)
            ghost = await login(fresh, "ghost@example.com", "whatever-1")
        # The ceiling locks the account everywhere, and an unknown email exactly the same way.
        assert (locked.status, locked.code) == (ghost.status, ghost.code) == (429, locked.code)
    # The lock lives in the database: a restart does not lift it.
    with start_server(env) as server:
        async with from_source(server, "127.0.2.2") as fresh:
            assert (await login(fresh, *ADMIN)).status == 429
            # The operator's way back in, against the running server's database.
            done = _users_cli(server, "unlock", ADMIN[0])
            assert done.returncode == 0, done.stderr
            answer = await login(fresh, *ADMIN)
            assert answer.status == 200, answer.body
        audit = await _audit(server, answer.body["data"]["access_token"], "user_unlock")
        assert audit and audit[0]["details"].get("via") == "cli", audit


async def _audit(server: FloeServer, token: str, action: str) -> list[dict[str, object]]:
    async with from_source(server, "127.0.3.1") as client:
        response = await client.get(
            f"/api/v2/audit?action={action}", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        data: list[dict[str, object]] = response.json()["data"]
        return data


@pytest.fixture(params=BACKENDS)
def backend_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    yield from fresh_database(str(request.param), tmp_path)


async def test_two_instances_share_the_account_ceiling(backend_env: dict[str, str]) -> None:
    """A distributed burst over two control planes on one database: exactly `ceiling`
    guesses are verified in all, whatever the interleaving (conditional UPDATEs)."""
    env = {**backend_env, "FLOE_LOGIN_MAX_PER_ACCOUNT": "6"}
    with start_server(env) as first, start_server(env) as second:
        async def guesses(server: FloeServer, source: str) -> list[int]:
            async with from_source(server, source) as client:
                answers = await burst(client, [(ADMIN[0], WRONG)] * 2)
                return [a.status for a in answers]

        runs = [
            guesses(first if n % 2 else second, f"127.0.4.{n + 1}") for n in range(12)
        ]
        statuses = [s for run in await asyncio.gather(*runs) for s in run]
        assert statuses.count(401) == 6 and statuses.count(429) == 18, statuses
