"""Safe defaults on the first start (issue 10 item 21): no admin123 in production, the
generated password shown once and never logged, and the change-your-password flag."""

from __future__ import annotations

import json
import os
import pty
import re
import selectors
import stat
import subprocess
import time
from pathlib import Path

from tests.integration.identity.attacker import ADMIN, from_source, login, start_server
from tests.support.ports import free_port
from tests.support.server import PYTHON, REPO_ROOT

PRODUCTION = {"FLOE_ENV": "production"}
PASSWORD_FILE = "initial_admin_password"


def _flag(answer_body: dict[str, object]) -> object:
    data = answer_body["data"]
    assert isinstance(data, dict)
    return data["password_change_required"]


async def test_production_generates_the_admin_password_and_never_logs_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {**PRODUCTION, "FLOE_DATA_DIR": str(data_dir)}
    with start_server(env) as server:
        async with from_source(server) as client:
            assert (await login(client, *ADMIN)).status == 401
            # Not a terminal: the password went to a 0600 file in the data directory only.
            path = data_dir / PASSWORD_FILE
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            password = path.read_text().strip()
            assert len(password) >= 20
            answer = await login(client, ADMIN[0], password)
            assert answer.status == 200, answer.body
            assert _flag(answer.body) is True
            token = answer.body["data"]["access_token"]
            audit = await client.get(
                "/api/v2/audit?action=default_admin_create",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert audit.json()["data"][0]["details"] == {"password": "generated", "shown": "file"}
        output = server.output()
    assert password not in output
    assert str(path) in output  # the log says where to look, not what is there
    for line in output.splitlines():  # and the log stays JSON lines only
        json.loads(line)
    # A restart neither creates another admin nor touches the password.
    with start_server(env) as server:
        async with from_source(server) as client:
            assert (await login(client, ADMIN[0], password)).status == 200
    assert path.read_text().strip() == password


async def test_production_takes_the_admin_password_from_the_environment() -> None:
    chosen = "a-long-operator-password"
    with start_server({**PRODUCTION, "FLOE_ADMIN_PASSWORD": chosen}) as server:
        async with from_source(server) as client:
            assert (await login(client, *ADMIN)).status == 401
            answer = await login(client, ADMIN[0], chosen)
            assert answer.status == 200 and _flag(answer.body) is False
        assert not (server.data_dir / PASSWORD_FILE).exists()
        assert chosen not in server.output()


def test_a_bad_admin_password_stops_start_up(tmp_path: Path) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("FLOE_", "DB_", "SMTP_"))
    }
    env.update(
        FLOE_ENV="production", FLOE_ADMIN_PASSWORD="short", FLOE_DATA_DIR=str(tmp_path),
        BIND_HOST="127.0.0.1", HTTP_PORT=str(free_port()), HTTPS_PORT="0",
        GRPC_ENABLED="false", METRICS_ENABLED="false",
    )
    done = subprocess.run(
        [str(PYTHON), "-m", "app.cli", "serve"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "FLOE_ADMIN_PASSWORD" in done.stderr
    assert "short" not in done.stderr


async def test_development_keeps_admin123_and_asks_for_a_change() -> None:
    with start_server() as server:  # FloeServer defaults to FLOE_ENV=development
        async with from_source(server) as client:
            answer = await login(client, *ADMIN)
            assert answer.status == 200 and _flag(answer.body) is True
            headers = {"Authorization": f"Bearer {answer.body['data']['access_token']}"}
            response = await client.post(
                "/api/v2/me/password",
                json={"current_password": ADMIN[1], "new_password": "brand-new-password-1"},
                headers=headers,
            )
            assert response.status_code == 200, response.text
            answer = await login(client, ADMIN[0], "brand-new-password-1")
            assert answer.status == 200 and _flag(answer.body) is False


def _read_until_exit(fd: int, process: subprocess.Popen[bytes], timeout: float) -> str:
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    selector = selectors.DefaultSelector()  # poll/epoll: no FD_SETSIZE limit on fd numbers
    selector.register(fd, selectors.EVENT_READ)
    while time.monotonic() < deadline:
        if selector.select(0.2):
            try:
                data = os.read(fd, 4096)
            except OSError:  # the child closed its side
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    selector.close()
    return b"".join(chunks).decode(errors="replace")


async def test_on_a_terminal_the_password_is_printed_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("FLOE_", "DB_", "SMTP_"))
    }
    env.update(FLOE_ENV="production", FLOE_DATA_DIR=str(data_dir), FLOE_ARGON2_PROFILE="fast")
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [str(PYTHON), "-m", "app.cli", "db", "init"],
        env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=secondary,
    )
    os.close(secondary)
    try:
        text = _read_until_exit(primary, process, 60.0)
        assert process.wait(30) == 0, text
    finally:
        os.close(primary)
    match = re.search(r"password:\s+(\S+)", text)
    assert match, text
    password = match.group(1)
    assert not (data_dir / PASSWORD_FILE).exists()
    with start_server({**PRODUCTION, "FLOE_DATA_DIR": str(data_dir)}) as server:
        async with from_source(server) as client:
            answer = await login(client, ADMIN[0], password)
            assert answer.status == 200 and _flag(answer.body) is True
        assert password not in server.output()
