"""Database-layer fixtures: a fresh database per backend, and a started `Database`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import sqlalchemy as sa

from app.config import Settings
from app.db import AsyncDatabase, Database, initialise_schema, wait_for_database
from app.db.setup import create_engine
from tests.support.databases import db_env, sqlite_env

__all__ = ["adb", "db", "db_env", "engine", "settings", "sqlite_env"]


@pytest.fixture
def settings(db_env: dict[str, str], make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(**db_env, DB_POOL_SIZE="4", DB_MAX_RETRIES="2", DB_RETRY_DELAY="0.05")


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    wait_for_database(settings)
    initialise_schema(settings)
    database = Database(settings)
    await database.start()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def adb(db: Database, settings: Settings) -> AsyncIterator[AsyncDatabase]:
    database = AsyncDatabase(settings)
    await database.connect()
    try:
        yield database
    finally:
        await database.disconnect()


@pytest.fixture
def engine(settings: Settings) -> Iterator[sa.Engine]:
    """A SQLAlchemy engine on the test database, for cross-layer checks."""
    eng = create_engine(settings)
    try:
        yield eng
    finally:
        eng.dispose()
