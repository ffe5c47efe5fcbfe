"""Galera awareness: ids are never assumed contiguous; readiness knows about wsrep."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydal import DAL

from app.db import Database

pytestmark = pytest.mark.db


def _interleaved_ids(backend: str) -> Callable[[DAL], list[tuple[int, str]]]:
    """Insert three roles with the id step a Galera cluster uses (3), return ids + names."""

    def unit(dal: DAL) -> list[tuple[int, str]]:
        if backend == "mysql":
            dal.executesql("SET SESSION auto_increment_increment = 3")
            dal.executesql("SET SESSION auto_increment_offset = 2")
        elif backend == "postgresql":
            dal.executesql("ALTER SEQUENCE auth_role_id_seq INCREMENT BY 3")
        else:  # SQLite has no step: make a gap with an explicit id instead
            dal.executesql("INSERT INTO auth_role (id, name) VALUES (40, 'gap')")
        try:
            ids = [int(dal.auth_role.insert(name=f"role-{i}")) for i in range(3)]
        finally:
            if backend == "mysql":
                dal.executesql("SET SESSION auto_increment_increment = 1")
                dal.executesql("SET SESSION auto_increment_offset = 1")
        return [(i, str(dal.auth_role(i).name)) for i in ids]

    return unit


async def test_ids_come_from_the_database_not_arithmetic(db: Database) -> None:
    rows = await db.run(_interleaved_ids(db.backend))
    assert [name for _, name in rows] == ["role-0", "role-1", "role-2"]
    ids = [i for i, _ in rows]
    if db.backend == "sqlite":
        assert ids == [41, 42, 43]
    else:
        assert ids[1] - ids[0] == 3 and ids[2] - ids[1] == 3


async def test_wsrep_detection_and_readiness(db: Database) -> None:
    # The test MariaDB is a single node (wsrep_on=OFF): readiness uses SELECT 1.
    assert db.wsrep is False
    ok, detail = await db.ping()
    assert ok, detail
    if db.backend == "mysql":
        status = await db.run(lambda dal: dal.executesql("SHOW VARIABLES LIKE 'wsrep_on'"))
        assert not status or str(status[0][1]).upper() == "OFF"
