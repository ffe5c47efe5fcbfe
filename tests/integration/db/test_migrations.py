"""Trap: migration state lives in the database; restarts migrate additively, no files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydal import DAL

from app.config import Settings
from app.db import Database, initialise_schema, metadata
from app.db.database import MIGRATION_PREFIX

pytestmark = pytest.mark.db


def _extended() -> sa.MetaData:
    """The schema of a later release: one new column and one new table."""
    later = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(later)
    later.tables["auth_user"].append_column(sa.Column("nickname", sa.String(40), nullable=True))
    sa.Table(
        "node",
        later,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    return later


def _files(path: Path) -> set[str]:
    return {p.name for p in path.iterdir()}


async def _start_stop(settings: Settings, schema: sa.MetaData) -> None:
    initialise_schema(settings, schema)
    database = Database(settings, schema)
    await database.start()
    await database.close()


async def test_restarts_and_additive_migration(
    settings: Settings,
    engine: sa.Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    db_files_before = _files(tmp_path)

    # First start: SQLAlchemy creates, PyDAL records state ("fake migrate") once.
    await _start_stop(settings, metadata)
    with engine.connect() as conn:
        paths = set(conn.execute(sa.text("SELECT path FROM web2py_filesystem")).scalars())
    assert {f"{MIGRATION_PREFIX}_{t.name}.table" for t in metadata.sorted_tables} <= paths
    # Second start with the same schema: nothing to do, no "already exists".
    await _start_stop(settings, metadata)

    # A later release adds a column and a table: restart migrates additively.
    later = _extended()
    await _start_stop(settings, later)
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("auth_user")}
        tables = set(sa.inspect(conn).get_table_names())
        paths = set(conn.execute(sa.text("SELECT path FROM web2py_filesystem")).scalars())
    assert "nickname" in columns
    assert "node" in tables
    assert f"{MIGRATION_PREFIX}_node.table" in paths

    # The new column is usable from PyDAL's runtime, on a row written before it existed
    # and on a new one; and a fourth start is again a no-op.
    database = Database(settings, later)
    await database.start()
    try:

        def use(dal: DAL) -> list[str | None]:
            dal.auth_user.insert(email="n@x", fs_uniquifier="n", nickname="neo 🐧")
            dal.node.insert(name="edge-1")
            return [r.nickname for r in dal(dal.auth_user).select(orderby=dal.auth_user.id)]

        assert await database.run(use) == ["neo 🐧"]
    finally:
        await database.close()
    await _start_stop(settings, later)

    # Never a .table file or sql.log: not in cwd, not next to an SQLite database.
    assert _files(workdir) == set()
    new_files = _files(tmp_path) - db_files_before
    assert {n for n in new_files if n.endswith((".table", ".log"))} == set()
    assert not any(name.endswith(".table") for name in os.listdir(tmp_path))


async def test_rows_written_before_migration_survive(settings: Settings) -> None:
    await _start_stop(settings, metadata)
    database = Database(settings, metadata)
    await database.start()
    try:
        await database.run(lambda dal: dal.auth_user.insert(email="old@x", fs_uniquifier="o"))
    finally:
        await database.close()
    later = _extended()
    await _start_stop(settings, later)
    database = Database(settings, later)
    await database.start()
    try:
        row = await database.run(lambda dal: dal.auth_user(email="old@x"))
        assert row is not None and row.nickname is None and row.active is True
    finally:
        await database.close()


async def test_two_instances_starting_together(settings: Settings) -> None:
    """Scale-out: two control planes racing on a fresh database both come up."""
    import asyncio

    await asyncio.gather(
        asyncio.to_thread(initialise_schema, settings),
        asyncio.to_thread(initialise_schema, settings),
    )
    first, second = Database(settings), Database(settings)
    await asyncio.gather(first.start(), second.start())
    try:
        await first.run(lambda dal: dal.team.insert(name="a"))
        assert await second.run(lambda dal: dal(dal.team).count()) == 1
    finally:
        await first.close()
        await second.close()
