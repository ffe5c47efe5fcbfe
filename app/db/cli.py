"""`floe db init`: wait for the database and create the schema (SQLAlchemy + migrations).

The identity layer adds the default admin on first start; this command only prepares
the storage. Returns the process exit code: 0, or 1 with a one-line message on stderr.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

from app.config import Settings
from app.db.database import Database
from app.db.errors import DatabaseError
from app.db.setup import initialise_schema, wait_for_database

__all__ = ["After", "db_init"]

After = Callable[[Database], Awaitable[None]]


async def _migrate(settings: Settings, after: After | None) -> None:
    db = Database(settings)
    await db.start()  # runs the additive migrations
    try:
        if after is not None:
            await after(db)
    finally:
        await db.close()


def db_init(settings: Settings, after: After | None = None) -> int:
    """Prepare the storage, then run `after(db)` on the same started database (the caller's
    next layer, e.g. identity defaults); any DatabaseError is the one-line message."""
    try:
        wait_for_database(settings)
        created = initialise_schema(settings)
        asyncio.run(_migrate(settings, after))
    except DatabaseError as error:
        print(f"floe: {error}", file=sys.stderr)
        return 1
    print(f"floe: database schema ready ({len(created)} table(s) created)", file=sys.stderr)
    return 0
