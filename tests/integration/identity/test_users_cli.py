"""`floe users list|create|set-password|unlock|deactivate` (issue 10 item 22): the operator's
way back in, run as a real process against the same database env as `floe serve`, on each
backend; every action audited; passwords never on the command line."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.integration.identity.attacker import ADMIN, from_source, login, start_server
from tests.support.server import PYTHON, REPO_ROOT


def _env(db_env: dict[str, str], data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOE_", "DB_", "SMTP_"))}
    env.update(db_env)
    env.update(
        FLOE_DATA_DIR=str(data_dir),
        FLOE_ENV="development",
        FLOE_ARGON2_PROFILE="fast",
        SECRET_KEY="test-secret-key-not-for-production-0123456789",
        LOG_JSON="true",
    )
    return env


def floe(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PYTHON), "-m", "app.cli", *args],
        env=env, cwd=REPO_ROOT, input=stdin, capture_output=True, text=True, timeout=90,
        check=False,
    )


async def test_users_cli_on_backend(db_env: dict[str, str], tmp_path: Path) -> None:
    env = _env(db_env, tmp_path / "data")
    assert floe(env, "db", "init").returncode == 0
    # Passwords come from stdin (or a prompt), never from argv.
    assert floe(env, "users", "create", "ops@example.com", "--password", "x").returncode == 2
    done = floe(env, "users", "create", "ops@example.com", "--role", "admin",
                stdin="first-ops-password\n")
    assert done.returncode == 0, done.stderr
    assert "first-ops-password" not in done.stdout + done.stderr
    assert floe(env, "users", "create", "ops@example.com", stdin="x" * 12 + "\n").returncode == 1
    assert floe(env, "users", "create", "short@example.com", stdin="short\n").returncode == 1
    listing = json.loads(floe(env, "users", "list", "--json").stdout)
    ops = next(u for u in listing if u["email"] == "ops@example.com")
    assert ops["roles"] == ["admin"] and ops["active"] is True and ops["locked"] is False
    done = floe(env, "users", "set-password", ADMIN[0], stdin="operator-reset-pass\n")
    assert done.returncode == 0, done.stderr
    assert floe(env, "users", "unlock", ADMIN[0]).returncode == 0
    assert floe(env, "users", "deactivate", "ops@example.com").returncode == 0
    assert floe(env, "users", "deactivate", "ghost@example.com").returncode == 1
    with start_server({**db_env, "FLOE_DATA_DIR": str(tmp_path / "data")}) as server:
        async with from_source(server) as client:
            assert (await login(client, *ADMIN)).status == 401
            answer = await login(client, ADMIN[0], "operator-reset-pass")
            # A password set by someone else must be changed by its holder.
            assert answer.status == 200 and answer.body["data"]["password_change_required"]
            assert (await login(client, "ops@example.com", "first-ops-password")).status == 401
            token = answer.body["data"]["access_token"]
            audit = await client.get(
                "/api/v2/audit?limit=200", headers={"Authorization": f"Bearer {token}"}
            )
            rows = [r for r in audit.json()["data"] if r["details"].get("via") == "cli"]
    actions = sorted(r["action"] for r in rows)
    assert actions == [
        "password_reset_by_admin", "user_create", "user_deactivate", "user_unlock"
    ], actions
    assert all(r["actor_user_id"] is None and r["ip"] == "cli" for r in rows)
