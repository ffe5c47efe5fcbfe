"""Trap: a read must not leave its connection "idle in transaction"."""

from __future__ import annotations

import sqlite3

import psycopg2
import pymysql
import pytest
from pydal import DAL

from app.config import Settings
from app.db import Database

pytestmark = pytest.mark.db


def _open_transactions(settings: Settings, db: Database) -> int:
    """Sessions on the test database holding a transaction open, seen from outside."""
    if settings.db_type == "postgresql":
        conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="test")
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND state LIKE 'idle in transaction%%'",
                    (settings.db_name,),
                )
                return int(cur.fetchone()[0])
        finally:
            conn.close()
    if settings.db_type == "mysql":
        myconn = pymysql.connect(host="127.0.0.1", user="root", password="")
        try:
            with myconn.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FROM information_schema.innodb_trx t "
                    "JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id "
                    "WHERE p.db = %s",
                    (settings.db_name,),
                )
                row = cur.fetchone()
                return int(row[0]) if row else 0
        finally:
            myconn.close()
    # SQLite (PyDAL never pools it): the connections the units used, closed or idle.
    open_count = 0
    for conn in _SQLITE_SEEN:
        try:
            open_count += bool(conn.in_transaction)
        except sqlite3.ProgrammingError:  # closed: cannot hold a transaction
            pass
    return open_count


_SQLITE_SEEN: list[sqlite3.Connection] = []


def _read(dal: DAL) -> int:
    if dal._adapter.dbengine == "sqlite":
        _SQLITE_SEEN.append(dal._adapter.connection)
    return int(dal(dal.auth_user).count()) + len(dal(dal.auth_role).select())


async def test_reads_leave_no_open_transaction(db: Database, settings: Settings) -> None:
    await db.run(lambda dal: dal.auth_user.insert(email="a@x", fs_uniquifier="a"))
    _SQLITE_SEEN.clear()
    for _ in range(5):
        assert await db.run(_read) == 1
    assert _open_transactions(settings, db) == 0
    if settings.db_type == "sqlite":
        assert len(_SQLITE_SEEN) == 5


async def test_detector_sees_a_transaction_left_open(db: Database, settings: Settings) -> None:
    """The check above can fail: a DAL used without commit is caught by the same query."""
    dal = db.open_dal(pool_size=0)
    try:
        dal.executesql("SELECT 1")
        dal.executesql("SELECT count(*) FROM auth_user")
        if settings.db_type == "sqlite":
            dal.executesql("INSERT INTO team (name) VALUES ('open')")  # sqlite: writes open one
            conn = dal._adapter.connection
            assert conn.in_transaction
        else:
            assert _open_transactions(settings, db) >= 1
    finally:
        dal.rollback()
        dal.close()
