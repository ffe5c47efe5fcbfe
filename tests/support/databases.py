"""Fresh databases per test: SQLite in tmp_path, PostgreSQL and MariaDB on 127.0.0.1.

Each fixture yields the `DB_*` environment to pass to `make_settings(**env)`. Server
databases are named `floe_t_<random>` and dropped afterwards, so parallel runs (and the
other engineers' suites) never share state.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pymysql
import pytest

__all__ = [
    "BACKENDS",
    "db_env",
    "drop_server_database",
    "fresh_database",
    "sqlite_env",
]

BACKENDS = ("sqlite", "postgresql", "mysql")

_PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
_MY = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


def _create_server_database(backend: str, name: str) -> None:
    if backend == "postgresql":
        conn = psycopg2.connect(**_PG)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
    else:
        myconn = pymysql.connect(**_MY)
        try:
            with myconn.cursor() as cur:
                # The server default charset: the schema must force utf8mb4 itself.
                cur.execute(f"CREATE DATABASE `{name}`")
        finally:
            myconn.close()


def drop_server_database(backend: str, name: str) -> None:
    """Drop a test database even if connections are still open (PG: WITH (FORCE))."""
    if backend == "postgresql":
        conn = psycopg2.connect(**_PG)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()
    elif backend == "mysql":
        myconn = pymysql.connect(**_MY)
        try:
            with myconn.cursor() as cur:
                cur.execute(
                    "SELECT id FROM information_schema.processlist WHERE db = %s", (name,)
                )
                for (pid,) in cur.fetchall():
                    try:
                        cur.execute(f"KILL {int(pid)}")
                    except pymysql.MySQLError:
                        pass
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            myconn.close()


def fresh_database(backend: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Create one fresh database for `backend`, yield its env, drop it afterwards."""
    name = f"floe_t_{secrets.token_hex(6)}"
    if backend == "sqlite":
        yield {
            "DB_TYPE": "sqlite",
            "DB_HOST": "",
            "DB_PORT": "",
            "DB_NAME": str(tmp_path / f"{name}.sqlite"),
            "DB_USER": "",
            "DB_PASS": "",
        }
        return
    _create_server_database(backend, name)
    try:
        if backend == "postgresql":
            yield {
                "DB_TYPE": "postgresql",
                "DB_HOST": "127.0.0.1",
                "DB_PORT": "5432",
                "DB_NAME": name,
                "DB_USER": "postgres",
                "DB_PASS": "",
            }
        else:
            yield {
                "DB_TYPE": "mysql",
                "DB_HOST": "127.0.0.1",
                "DB_PORT": "3306",
                "DB_NAME": name,
                "DB_USER": "root",
                "DB_PASS": "",
            }
    finally:
        drop_server_database(backend, name)


@pytest.fixture(params=BACKENDS)
def db_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A fresh database on each of the three backends (the test runs three times)."""
    yield from fresh_database(str(request.param), tmp_path)


@pytest.fixture
def sqlite_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A fresh SQLite database file in tmp_path."""
    yield from fresh_database("sqlite", tmp_path)
