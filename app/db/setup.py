"""Start-up steps shared by `floe serve` and `floe db init`: wait, then create the schema.

Both use SQLAlchemy with no pool (one short-lived connection each); the runtime never
touches SQLAlchemy again.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from app.config import Settings
from app.db.errors import DatabaseUnavailable, map_error
from app.db.schema import create_schema, metadata
from app.db.urls import mask, sqlalchemy_url, sqlite_path

__all__ = [
    "backoff_delays",
    "create_engine",
    "initialise_schema",
    "schema_lock",
    "sqlite_wal",
    "wait_for_database",
]

log = logging.getLogger("floe.db")

CONNECT_TIMEOUT = 5  # seconds, per connection attempt
SCHEMA_LOCK_KEY = 0x466C6F65  # "Floe"
SCHEMA_LOCK_TIMEOUT = 60  # seconds
MAX_DELAY = 60.0


def create_engine(settings: Settings) -> sa.Engine:
    """A pool-less SQLAlchemy engine for schema work (MariaDB: utf8mb4, strict)."""
    connect_args: dict[str, Any] = {}
    if settings.db_type == "sqlite":
        sqlite_path(settings).parent.mkdir(parents=True, exist_ok=True)
    else:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT
    engine = sa.create_engine(
        sqlalchemy_url(settings), poolclass=NullPool, connect_args=connect_args
    )
    if settings.db_type == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_foreign_keys)
    return engine


def _sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    """SQLite checks foreign keys only when asked, per connection (as PyDAL does); WAL is
    set here, before any PyDAL connection exists (switching needs an exclusive lock)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    sqlite_wal(cursor.execute)
    cursor.close()


def sqlite_wal(execute: Callable[[str], Any], *, wait: float = 5.0) -> None:
    """Switch SQLite to WAL. The switch needs the file to itself and, unlike other
    statements, fails at once ("database is locked") instead of using the busy timeout
    when another connection is busy, so retry briefly."""
    deadline = time.monotonic() + wait
    while True:
        try:
            execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def backoff_delays(settings: Settings) -> list[float]:
    """Sleep before each retry: DB_RETRY_DELAY doubling per attempt, capped at 60 s."""
    attempts = max(1, settings.db_max_retries)
    return [min(settings.db_retry_delay * 2**i, MAX_DELAY) for i in range(attempts - 1)]


def wait_for_database(settings: Settings, *, sleep: Callable[[float], None] = time.sleep) -> None:
    """Connect and `SELECT 1`, retrying with exponential backoff (DB_MAX_RETRIES attempts).

    Logs every attempt; raises `DatabaseUnavailable` with a one-line message at the end.
    """
    url = sqlalchemy_url(settings)
    delays = backoff_delays(settings)
    attempts = len(delays) + 1
    engine = create_engine(settings)
    last = ""
    try:
        for attempt in range(1, attempts + 1):
            try:
                with engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
                log.info("database %s reachable (attempt %d/%d)", mask(url), attempt, attempts)
                return
            except (sa.exc.DBAPIError, OSError) as error:
                cause = error.orig if isinstance(error, sa.exc.DBAPIError) else error
                last = " ".join(str(cause).split()) or type(cause).__name__
                if attempt < attempts:
                    delay = delays[attempt - 1]
                    log.warning(
                        "database %s attempt %d/%d failed: %s; retrying in %.1f s",
                        mask(url),
                        attempt,
                        attempts,
                        last,
                        delay,
                    )
                    sleep(delay)
                else:
                    log.error(
                        "database %s attempt %d/%d failed: %s", mask(url), attempt, attempts, last
                    )
    finally:
        engine.dispose()
    raise DatabaseUnavailable(
        f"database {mask(url)} unreachable after {attempts} attempt(s): {last}"
    )


@contextlib.contextmanager
def schema_lock(
    execute: Callable[[str], Any], backend: str, *, sqlite: bool = True
) -> Iterator[None]:
    """Serialise schema work across instances starting together (scale-out).

    PostgreSQL: a session advisory lock; MariaDB: GET_LOCK (both survive the implicit
    commits of DDL). SQLite (`sqlite=True`): take the write lock up front (BEGIN
    IMMEDIATE), held until the caller commits.
    """
    if backend == "sqlite" and sqlite:
        execute("BEGIN IMMEDIATE")
    elif backend == "postgresql":
        execute(f"SELECT pg_advisory_lock({SCHEMA_LOCK_KEY})")
    elif backend == "mysql":
        execute(f"SELECT GET_LOCK('floe_schema', {SCHEMA_LOCK_TIMEOUT})")
    try:
        yield
    finally:
        if backend == "postgresql":
            execute(f"SELECT pg_advisory_unlock({SCHEMA_LOCK_KEY})")
        elif backend == "mysql":
            execute("SELECT RELEASE_LOCK('floe_schema')")


def initialise_schema(settings: Settings, schema: sa.MetaData = metadata) -> list[str]:
    """Create missing tables (SQLAlchemy); returns the names created."""
    engine = create_engine(settings)
    try:
        with engine.connect() as conn:
            with schema_lock(conn.exec_driver_sql, settings.db_type):
                created = create_schema(conn, schema)
                # Commit before the lock is released, so the next instance sees the tables.
                conn.commit()
    except sa.exc.DBAPIError as error:
        mapped = map_error(error.orig) if error.orig is not None else None
        if mapped is not None:
            raise mapped from error
        raise
    finally:
        engine.dispose()
    if created:
        log.info("database schema: created %s", ", ".join(created))
    return created
