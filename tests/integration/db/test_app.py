"""`init_app`: the app's lifecycle opens the databases, readiness reports, close releases."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from quart import Quart

from app.config import Settings
from app.db import AsyncDatabase, Database
from app.db.schema import auth_user
from app.factory import create_app
from app.runtime import get_runtime
from tests.support.databases import drop_server_database

pytestmark = pytest.mark.db


async def test_default_app_fixture_runs_on_sqlite(app: Quart) -> None:
    runtime = get_runtime(app)
    db = runtime.components["db"]
    assert isinstance(db, Database) and db.backend == "sqlite"
    assert isinstance(runtime.components["asyncdb"], AsyncDatabase)
    ok, detail = await runtime.readiness["database"]()
    assert ok, detail


async def test_lifecycle_on_each_backend(
    db_env: dict[str, str], make_settings: Callable[..., Settings]
) -> None:
    application = create_app(make_settings(**db_env))
    async with application.test_app():
        runtime = get_runtime(application)
        db: Database = runtime.components["db"]
        adb: AsyncDatabase = runtime.components["asyncdb"]
        assert db.backend == db_env["DB_TYPE"]
        user_id = await db.run(lambda dal: dal.auth_user.insert(email="a@x", fs_uniquifier="a"))
        row = await adb.fetch_one(sa.select(auth_user).where(auth_user.c.id == int(user_id)))
        assert row is not None and row["email"] == "a@x" and row["active"] is True
        ok, detail = await runtime.readiness["database"]()
        assert ok, detail
    # after_serving released everything
    assert "db" not in runtime.components and "asyncdb" not in runtime.components
    assert "database" not in runtime.readiness


async def test_readiness_reports_down_when_database_goes_away(
    db_env: dict[str, str], make_settings: Callable[..., Settings]
) -> None:
    backend = db_env["DB_TYPE"]
    if backend == "sqlite":
        pytest.skip("an SQLite file cannot become unreachable while open")
    application = create_app(make_settings(**db_env))
    async with application.test_app():
        check = get_runtime(application).readiness["database"]
        assert (await check())[0]
        drop_server_database(backend, db_env["DB_NAME"])  # kills its sessions, then drops it
        ok, detail = await check()
        assert not ok
        assert backend in detail
