"""Database layer: SQLAlchemy creates the schema, PyDAL runs the units of work, and
`databases` serves the async hot path. See docs/database.md.

`init_app(app)` wires the lifecycle: before serving it waits for the database, creates
missing tables, runs PyDAL's additive migrations, starts `Database` and `AsyncDatabase`
(`components["db"]` / `["asyncdb"]`) and registers the "database" readiness check;
after serving it closes both.
"""

from __future__ import annotations

import asyncio
import logging

from quart import Quart

from app.db.asyncdb import AsyncDatabase
from app.db.database import Database, DatabaseStats
from app.db.errors import DatabaseError, DatabaseUnavailable, DataError, IntegrityError
from app.db.schema import Flag, create_schema, metadata, utcnow
from app.db.setup import initialise_schema, wait_for_database
from app.runtime import get_runtime

__all__ = [
    "AsyncDatabase",
    "DataError",
    "Database",
    "DatabaseError",
    "DatabaseStats",
    "DatabaseUnavailable",
    "Flag",
    "IntegrityError",
    "create_schema",
    "init_app",
    "initialise_schema",
    "metadata",
    "utcnow",
    "wait_for_database",
]

log = logging.getLogger("floe.db")


def init_app(app: Quart) -> None:
    """Open the databases before serving and close them after."""

    @app.before_serving
    async def _open_databases() -> None:
        runtime = get_runtime(app)
        settings = runtime.settings
        await asyncio.to_thread(wait_for_database, settings)
        await asyncio.to_thread(initialise_schema, settings)
        db = Database(settings)
        await db.start()
        asyncdb = AsyncDatabase(settings)
        try:
            await asyncdb.connect()
        except BaseException:
            await db.close()
            raise
        runtime.components["db"] = db
        runtime.components["asyncdb"] = asyncdb
        runtime.readiness["database"] = db.ping

    @app.after_serving
    async def _close_databases() -> None:
        runtime = get_runtime(app)
        runtime.readiness.pop("database", None)
        asyncdb = runtime.components.pop("asyncdb", None)
        db = runtime.components.pop("db", None)
        if isinstance(asyncdb, AsyncDatabase):
            await asyncdb.disconnect()
        if isinstance(db, Database):
            await db.close()
