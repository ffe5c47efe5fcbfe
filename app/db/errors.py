"""One exception hierarchy for every database driver Floe uses.

Callers catch `IntegrityError` (unique/foreign-key violations), `DataError` (a value the
column cannot hold, e.g. an over-long string) and `DatabaseUnavailable` (cannot connect or
the connection was lost) without knowing whether psycopg2, PyMySQL, sqlite3, asyncpg or
aiomysql raised it. `map_error()` is the only place that knows the driver exceptions.
"""

from __future__ import annotations

import sqlite3

import psycopg2
import pymysql

__all__ = [
    "DataError",
    "DatabaseError",
    "DatabaseUnavailable",
    "IntegrityError",
    "map_error",
]


class DatabaseError(Exception):
    """Base of every mapped database failure."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached, or the connection was lost mid-operation."""


class IntegrityError(DatabaseError):
    """A constraint refused the write (unique, foreign key, not null)."""


class DataError(DatabaseError):
    """A value does not fit its column (over-long string, out of range)."""


# MySQL/MariaDB client and server error numbers that mean "the connection is gone".
_MYSQL_CONNECTION_LOST = {
    1040,  # too many connections
    1053,  # server shutdown in progress
    1927,  # connection was killed
    2002,  # can't connect (socket)
    2003,  # can't connect (TCP)
    2006,  # server has gone away
    2013,  # lost connection during query
    2014,  # commands out of sync (broken connection state)
    2055,  # lost connection at reading
}
_MYSQL_DATA = {1264, 1366, 1406}  # out of range, incorrect value, data too long
_SQLITE_UNAVAILABLE = ("unable to open database", "disk i/o error", "database is locked")


def _asyncpg_error(error: BaseException) -> DatabaseError | None:
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - installed with the project
        return None
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(str(error))
    if isinstance(error, asyncpg.DataError):
        return DataError(str(error))
    if isinstance(
        error,
        asyncpg.PostgresConnectionError
        | asyncpg.InterfaceError
        # a pooled connection killed under a query is left mid-protocol: the next statement
        # on it fails with "cannot switch to state ..." (seen after a server-side kill)
        | asyncpg.InternalClientError
        | asyncpg.exceptions.AdminShutdownError
        | asyncpg.exceptions.CannotConnectNowError,
    ):
        return DatabaseUnavailable(str(error))
    return None


def _sqlite_error(error: sqlite3.Error) -> DatabaseError | None:
    message = str(error)
    if isinstance(error, sqlite3.IntegrityError):
        if message.startswith("CHECK constraint failed"):
            return DataError(message)
        return IntegrityError(message)
    if isinstance(error, sqlite3.OperationalError) and message.lower().startswith(
        _SQLITE_UNAVAILABLE
    ):
        return DatabaseUnavailable(message)
    if isinstance(error, sqlite3.ProgrammingError) and "closed database" in message:
        return DatabaseUnavailable(message)
    return None


def map_error(error: BaseException) -> DatabaseError | None:
    """The Floe exception for a driver exception, or None when it is not a DB failure."""
    if isinstance(error, DatabaseError):
        return error
    if isinstance(error, sqlite3.Error):
        return _sqlite_error(error)
    if isinstance(error, psycopg2.IntegrityError):
        return IntegrityError(str(error).strip())
    if isinstance(error, psycopg2.DataError):
        return DataError(str(error).strip())
    if isinstance(error, psycopg2.OperationalError | psycopg2.InterfaceError):
        return DatabaseUnavailable(str(error).strip())
    if isinstance(error, pymysql.err.IntegrityError):
        return IntegrityError(str(error))
    if isinstance(error, pymysql.err.DataError):
        return DataError(str(error))
    if isinstance(error, pymysql.err.MySQLError):
        code = error.args[0] if error.args and isinstance(error.args[0], int) else 0
        if code in _MYSQL_DATA:
            return DataError(str(error))
        if code in _MYSQL_CONNECTION_LOST or isinstance(error, pymysql.err.InterfaceError):
            return DatabaseUnavailable(str(error))
        return None
    mapped = _asyncpg_error(error)
    if mapped is not None:
        return mapped
    if isinstance(error, ConnectionError | TimeoutError):
        return DatabaseUnavailable(str(error) or type(error).__name__)
    return None
