"""Outage: connections killed under the app (a restart, a failover) never wedge it."""

from __future__ import annotations

import asyncio

import psycopg2
import pymysql
import pytest
import sqlalchemy as sa
from pydal import DAL

from app.config import Settings
from app.db import AsyncDatabase, Database, DatabaseUnavailable
from app.db.schema import auth_user

pytestmark = pytest.mark.db


def _kill(settings: Settings, db: Database, pid: int | None = None) -> int:
    """Kill the test database's sessions (or one), as a server restart would."""
    if settings.db_type == "postgresql":
        conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="test")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                if pid is not None:
                    cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
                    return 1
                cur.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (settings.db_name,),
                )
                return int(cur.fetchone()[0])
        finally:
            conn.close()
    if settings.db_type == "mysql":
        myconn = pymysql.connect(host="127.0.0.1", user="root", password="")
        try:
            with myconn.cursor() as cur:
                if pid is None:
                    cur.execute(
                        "SELECT id FROM information_schema.processlist WHERE db = %s",
                        (settings.db_name,),
                    )
                    pids = [int(r[0]) for r in cur.fetchall()]
                else:
                    pids = [pid]
                for one in pids:
                    cur.execute(f"KILL {one}")
                return len(pids)
        finally:
            myconn.close()
    return 0  # SQLite: no server sessions (PyDAL never pools SQLite connections)


def _session_id(dal: DAL, backend: str) -> int | None:
    if backend == "postgresql":
        return int(dal.executesql("SELECT pg_backend_pid()")[0][0])
    if backend == "mysql":
        return int(dal.executesql("SELECT CONNECTION_ID()")[0][0])
    return None


async def _warm(db: Database) -> None:
    def slow(dal: DAL) -> int:
        dal.executesql("SELECT 1")
        return int(dal(dal.auth_user).count())

    await asyncio.gather(*(db.run(slow) for _ in range(8)))


async def test_pooled_connections_killed_between_units(db: Database, settings: Settings) -> None:
    await db.run(lambda dal: dal.auth_user.insert(email="a@x", fs_uniquifier="a"))
    await _warm(db)
    killed = _kill(settings, db)
    if settings.db_type != "sqlite":  # PyDAL opens a fresh SQLite connection per unit
        assert killed >= 1
    # Every unit after the kill succeeds: dead connections are dropped at checkout.
    results = await asyncio.gather(
        *(db.run(lambda dal: dal(dal.auth_user).count()) for _ in range(12))
    )
    assert results == [1] * 12
    ok, detail = await db.ping()
    assert ok, detail
    if settings.db_type == "mysql":  # replacement connections are hardened again
        mode, charset = await db.run(
            lambda dal: dal.executesql("SELECT @@SESSION.sql_mode, @@character_set_client")[0]
        )
        assert "STRICT_ALL_TABLES" in mode and charset == "utf8mb4"


async def test_connection_killed_inside_a_unit(db: Database, settings: Settings) -> None:
    backend = settings.db_type

    def doomed(dal: DAL) -> None:
        dal.auth_user.insert(email="lost@x", fs_uniquifier="lost")
        if backend == "sqlite":
            dal._adapter.connection.close()
        else:
            _kill(settings, db, _session_id(dal, backend))
        dal.executesql("SELECT 1")

    reconnects = db.stats.reconnects
    with pytest.raises(DatabaseUnavailable):
        await db.run(doomed)
    assert db.stats.reconnects == reconnects + 1
    # The half-done unit was not committed, and the worker carries on.
    assert await db.run(lambda dal: dal(dal.auth_user.email == "lost@x").count()) == 0
    await db.run(lambda dal: dal.auth_user.insert(email="next@x", fs_uniquifier="next"))
    assert await db.run(lambda dal: dal(dal.auth_user).count()) == 1


async def test_async_path_recovers_after_kill(
    db: Database, adb: AsyncDatabase, settings: Settings
) -> None:
    await db.run(lambda dal: dal.auth_user.insert(email="a@x", fs_uniquifier="a"))
    query = sa.select(auth_user.c.email)
    assert [r["email"] for r in await adb.fetch_all(query)] == ["a@x"]
    _kill(settings, db)
    for _ in range(3):
        assert [r["email"] for r in await adb.fetch_all(query)] == ["a@x"]
    row = await adb.fetch_one(sa.select(auth_user.c.active).where(auth_user.c.email == "a@x"))
    assert row == {"active": True}


async def test_async_reads_retry_once_and_writes_never_silently(
    db: Database, adb: AsyncDatabase, settings: Settings
) -> None:
    """After a kill, a read is retried (and counted); a write is either acknowledged and
    stored, or refused with DatabaseUnavailable and absent: never acknowledged and lost."""
    query = sa.select(auth_user.c.email)
    assert await adb.fetch_all(query) == []  # the pool holds a live connection now
    killed = _kill(settings, db)
    retries = adb.retries
    assert await adb.fetch_all(query) == []
    if settings.db_type != "sqlite":
        assert killed > 0
        assert adb.retries == retries + 1  # the dead pooled connection was noticed and replaced
    _kill(settings, db)
    stored: list[str] = []
    for i in range(3):
        email = f"w{i}@x"
        try:
            await adb.execute(sa.insert(auth_user).values(email=email, fs_uniquifier=email))
        except DatabaseUnavailable:
            continue
        stored.append(email)
    assert stored  # the pool recovers for later writes
    rows = await db.run(lambda dal: [r.email for r in dal(dal.auth_user).select(orderby="email")])
    assert rows == stored
