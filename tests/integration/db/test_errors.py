"""Every driver's failures arrive as `app.db.errors` exceptions, on every path."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydal import DAL

from app.config import Settings
from app.db import (
    AsyncDatabase,
    Database,
    DatabaseUnavailable,
    IntegrityError,
    initialise_schema,
    wait_for_database,
)
from app.db.cli import db_init
from app.db.schema import auth_user, auth_user_role
from tests.support.ports import free_port

pytestmark = pytest.mark.db

SECRET = "s3cr3t-p@ss:word"


def _unreachable(
    db_env: dict[str, str], make_settings: Callable[..., Settings], tmp_path: Path, **extra: str
) -> Settings:
    """Settings for the same backend pointing at nothing (closed port / unopenable file)."""
    env = dict(db_env)
    if env["DB_TYPE"] == "sqlite":
        directory = tmp_path / "not-a-file.sqlite"
        directory.mkdir()
        env["DB_NAME"] = str(directory)  # a directory cannot be opened as a database
    else:
        env["DB_PORT"] = str(free_port())
        env["DB_PASS"] = SECRET
    env.update(extra)
    return make_settings(**env)


async def test_unique_violation_on_async_path(db: Database, adb: AsyncDatabase) -> None:
    await adb.execute(sa.insert(auth_user).values(email="a@x", fs_uniquifier="a"))
    with pytest.raises(IntegrityError):
        await adb.execute(sa.insert(auth_user).values(email="a@x", fs_uniquifier="b"))


async def test_foreign_key_violation_maps(db: Database, adb: AsyncDatabase) -> None:
    def orphan(dal: DAL) -> None:
        dal.auth_user_role.insert(user_id=424242, role_id=424242)

    with pytest.raises(IntegrityError):
        await db.run(orphan)


async def test_foreign_key_violation_maps_on_async_path(adb: AsyncDatabase) -> None:
    with pytest.raises(IntegrityError):
        await adb.execute(sa.insert(auth_user_role).values(user_id=31337, role_id=31337))


async def test_cascade_delete_follows_the_schema(db: Database) -> None:
    def setup(dal: DAL) -> int:
        user = dal.auth_user.insert(email="c@x", fs_uniquifier="c")
        role = dal.auth_role.insert(name="viewer")
        dal.auth_user_role.insert(user_id=user, role_id=role)
        return int(user)

    user_id = await db.run(setup)
    await db.run(lambda dal: dal(dal.auth_user.id == user_id).delete())
    assert await db.run(lambda dal: dal(dal.auth_user_role).count()) == 0
    assert await db.run(lambda dal: dal(dal.auth_role).count()) == 1


async def test_sqlalchemy_sees_same_constraint(db: Database, engine: sa.Engine) -> None:
    with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(sa.insert(auth_user_role).values(user_id=999, role_id=999))


def test_wait_for_database_backs_off_and_gives_up(
    db_env: dict[str, str],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = _unreachable(
        db_env, make_settings, tmp_path, DB_MAX_RETRIES="4", DB_RETRY_DELAY="0.5"
    )
    sleeps: list[float] = []
    caplog.set_level(logging.INFO, logger="floe.db")
    with pytest.raises(DatabaseUnavailable) as caught:
        wait_for_database(settings, sleep=sleeps.append)
    assert sleeps == [0.5, 1.0, 2.0]  # exponential from DB_RETRY_DELAY
    message = str(caught.value)
    assert "\n" not in message and "after 4 attempt(s)" in message
    attempts = [r for r in caplog.records if "attempt" in r.getMessage()]
    assert len(attempts) == 4
    text = message + "".join(r.getMessage() for r in caplog.records)
    assert SECRET not in text


def test_wait_for_database_succeeds_when_reachable(settings: Settings) -> None:
    sleeps: list[float] = []
    wait_for_database(settings, sleep=sleeps.append)
    assert sleeps == []


async def test_start_on_unreachable_database_raises_unavailable(
    db_env: dict[str, str], make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = _unreachable(db_env, make_settings, tmp_path)
    database = Database(settings)
    with pytest.raises(DatabaseUnavailable) as caught:
        await database.start()
    assert SECRET not in str(caught.value) and "\n" not in str(caught.value)
    await database.close()
    with pytest.raises(DatabaseUnavailable):
        await database.run(lambda dal: None)
    if settings.db_type != "sqlite":  # aiosqlite opens lazily, on the first query
        with pytest.raises(DatabaseUnavailable):
            await AsyncDatabase(settings).connect()


def test_cli_db_init(
    settings: Settings,
    db_env: dict[str, str],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    engine: sa.Engine,
) -> None:
    assert db_init(settings) == 0
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert {"auth_user", "audit_log", "web2py_filesystem"} <= tables
    assert db_init(settings) == 0  # idempotent
    assert initialise_schema(settings) == []

    seen: list[int] = []

    async def after(db: Any) -> None:  # the next layer runs on the same started database
        seen.append(await db.run(lambda dal: dal(dal.auth_user).count()))
        raise DatabaseUnavailable("lost it")

    capsys.readouterr()
    assert db_init(settings, after=after) == 1 and seen == [0]
    assert capsys.readouterr().err.strip() == "floe: lost it"  # one line, no traceback

    bad = _unreachable(db_env, make_settings, tmp_path, DB_MAX_RETRIES="1")
    capsys.readouterr()
    assert db_init(bad) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("floe: database") and "unreachable" in err and "\n" not in err
    assert SECRET not in err
