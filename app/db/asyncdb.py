"""The async path (`databases` over asyncpg / aiomysql / aiosqlite) for hot reads.

Queries are SQLAlchemy Core expressions with their values embedded (`select(t).where(
t.c.id == 5)`): `databases` then applies each column's type on the way in and out, so a
`Flag` column reads as a bool on every backend. A Core query with a separate values dict
fails inside `databases`, so that combination is refused up front; plain SQL strings take
a values dict. Reads are retried once when the pooled connection turns out to be dead
(a database restart); writes are not (the outcome would be unknown).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import databases
import sqlalchemy as sa
from sqlalchemy.sql import ClauseElement

from app.config import Settings
from app.db.database import MYSQL_STRICT_MODE
from app.db.errors import DatabaseUnavailable, map_error
from app.db.urls import async_url, mask

__all__ = ["AsyncDatabase", "Query", "with_defaults"]

log = logging.getLogger("floe.db")

Query = ClauseElement | str
S = TypeVar("S", bound=sa.Insert | sa.Update)
R = TypeVar("R")


class AsyncDatabase:
    """`get_runtime(app).components["asyncdb"]`: fetch_one / fetch_all / execute."""

    def __init__(self, settings: Settings) -> None:
        self.backend = settings.db_type
        self._url = async_url(settings)
        options: dict[str, Any] = {}
        if settings.db_type in ("postgresql", "mysql"):
            options.update(min_size=1, max_size=settings.db_pool_size)
        if settings.db_type == "mysql":
            options.update(
                charset="utf8mb4", init_command=f"SET SESSION sql_mode='{MYSQL_STRICT_MODE}'"
            )
        self._db = databases.Database(self._url, **options)
        self.retries = 0

    def __repr__(self) -> str:
        return f"AsyncDatabase({mask(self._url)})"

    @property
    def connected(self) -> bool:
        return bool(self._db.is_connected)

    async def connect(self) -> None:
        try:
            await self._db.connect()
        except Exception as error:
            raise _mapped(error) from error

    async def disconnect(self) -> None:
        if self._db.is_connected:
            await self._db.disconnect()

    async def fetch_one(
        self, query: Query, values: Mapping[str, Any] | None = None
    ) -> Mapping[str, Any] | None:
        _check(query, values)
        row = await self._read(lambda: self._db.fetch_one(query, dict(values) if values else None))
        return None if row is None else dict(row._mapping)

    async def fetch_all(
        self, query: Query, values: Mapping[str, Any] | None = None
    ) -> Sequence[Mapping[str, Any]]:
        _check(query, values)
        rows = await self._read(lambda: self._db.fetch_all(query, dict(values) if values else None))
        return [dict(row._mapping) for row in rows]

    async def _read(self, call: Callable[[], Awaitable[R]]) -> R:
        """Run a read, retried once when the database was unreachable: a read is safe to
        repeat, and the pool replaces the connection a restart killed."""
        for attempt in (1, 2):
            try:
                return await call()
            except Exception as error:
                mapped = _mapped(error)
                if attempt == 1 and isinstance(mapped, DatabaseUnavailable):
                    self.retries += 1
                    log.warning("async database read failed (%s); retrying once", mapped)
                    continue
                raise mapped from error
        raise AssertionError("unreachable")

    async def execute(self, query: Query, values: Mapping[str, Any] | None = None) -> Any:
        """Run one statement (autocommitted); returns the driver's result (last row id).

        Core INSERT/UPDATE get the columns' Python-side defaults filled in (`databases`
        would otherwise send NULL for them).
        """
        _check(query, values)
        if isinstance(query, sa.Insert | sa.Update):
            query = with_defaults(query)
        try:
            if self.backend == "sqlite":
                # aiosqlite connections are per query; foreign keys are per connection.
                async with self._db.connection() as connection:
                    await connection.execute("PRAGMA foreign_keys=ON")
                    return await connection.execute(query, dict(values) if values else None)
            return await self._db.execute(query, dict(values) if values else None)
        except Exception as error:
            raise _mapped(error) from error


def with_defaults(statement: S) -> S:
    """`statement` with the Python-side default (INSERT) or onupdate (UPDATE) of every
    column it does not set, evaluated now."""
    given = {getattr(k, "key", k) for k in (statement._values or {})}
    if statement._multi_values:
        return statement  # executemany-style VALUES lists: the caller supplies every column
    extra: dict[str, Any] = {}
    table = statement.table
    if not isinstance(table, sa.Table):
        return statement
    for column in table.columns:
        source = column.default if isinstance(statement, sa.Insert) else column.onupdate
        if column.key in given or not isinstance(source, sa.ColumnDefault):
            continue
        if source.is_callable:
            extra[column.key] = source.arg(None)
        elif source.is_scalar:
            extra[column.key] = source.arg
    if not extra:
        return statement
    filled: S = statement.values(**extra)  # type: ignore[assignment]
    return filled


def _check(query: Query, values: Mapping[str, Any] | None) -> None:
    if values and not isinstance(query, str):
        raise TypeError("embed values in a Core query; a values dict is only for SQL strings")


def _mapped(error: BaseException) -> Exception:
    mapped = map_error(error)
    if mapped is not None:
        return mapped
    return error if isinstance(error, Exception) else RuntimeError(str(error))
