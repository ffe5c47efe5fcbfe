"""`floe db init`: wait for the database and create the schema (SQLAlchemy + migrations).

The identity layer adds the default admin on first start; this command only prepares
the storage. Returns the process exit code: 0, or 1 with a one-line message on stderr.
"""

from __future__ import annotations

import asyncio
import sys

from app.config import Settings
from app.db.database import Database
from app.db.errors import DatabaseError
from app.db.setup import initialise_schema, wait_for_database

__all__ = ["db_init"]


async def _migrate(settings: Settings) -> None:
    db = Database(settings)
    await db.start()
    await db.close()


def db_init(settings: Settings) -> int:
    try:
        wait_for_database(settings)
        created = initialise_schema(settings)
        asyncio.run(_migrate(settings))
    except DatabaseError as error:
        print(f"floe: {error}", file=sys.stderr)
        return 1
    print(f"floe: database schema ready ({len(created)} table(s) created)", file=sys.stderr)
    return 0
