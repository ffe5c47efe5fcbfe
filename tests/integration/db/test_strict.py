"""Trap: an over-long string is an error on every backend, never silently truncated."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from pydal import DAL

from app.db import AsyncDatabase, Database, DataError
from app.db.schema import auth_user

pytestmark = pytest.mark.db


async def test_overlong_string_is_refused_by_pydal(db: Database) -> None:
    too_long = "x" * 129  # display_name is String(128)

    def write(dal: DAL) -> None:
        dal.auth_user.insert(email="a@x", fs_uniquifier="a", display_name=too_long)

    with pytest.raises(DataError):
        await db.run(write)
    assert await db.run(lambda dal: dal(dal.auth_user).count()) == 0
    # Exactly at the limit is fine (the limit counts characters, not bytes).
    at_limit = "🐧" * 128
    await db.run(
        lambda dal: dal.auth_user.insert(email="b@x", fs_uniquifier="b", display_name=at_limit)
    )
    stored = await db.run(lambda dal: dal.auth_user(email="b@x").display_name)
    assert stored == at_limit


async def test_overlong_string_is_refused_by_the_async_path(adb: AsyncDatabase) -> None:
    with pytest.raises(DataError):
        await adb.execute(
            sa.insert(auth_user).values(email="a@x", fs_uniquifier="a", display_name="y" * 129)
        )
    assert (await adb.fetch_one(sa.select(sa.func.count()).select_from(auth_user)) or {}) == {
        "count_1": 0
    }


async def test_pydal_connections_run_in_strict_mode(db: Database) -> None:
    if db.backend != "mysql":
        pytest.skip("sql_mode exists on MariaDB only")
    mode = await db.run(lambda dal: str(dal.executesql("SELECT @@SESSION.sql_mode")[0][0]))
    assert "STRICT_ALL_TABLES" in mode
    assert "NO_BACKSLASH_ESCAPES" in mode  # PyDAL's quoting relies on it
