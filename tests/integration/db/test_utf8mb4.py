"""Trap: 4-byte UTF-8 (emoji) must survive both layers; MariaDB tables are utf8mb4."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from pydal import DAL

from app.db import AsyncDatabase, Database
from app.db.schema import auth_user, metadata

pytestmark = pytest.mark.db

NAME = "Ada 🐧🚀 Łódź 日本"


async def test_emoji_round_trip_both_layers(
    db: Database, engine: sa.Engine, adb: AsyncDatabase
) -> None:
    await db.run(
        lambda dal: dal.auth_user.insert(email="p@x", fs_uniquifier="p", display_name=NAME)
    )
    with engine.begin() as conn:
        conn.execute(sa.insert(auth_user).values(email="s@x", fs_uniquifier="s", display_name=NAME))
        via_sa = dict(conn.execute(sa.select(auth_user.c.email, auth_user.c.display_name)).all())
    via_dal = await db.run(
        lambda dal: {r.email: r.display_name for r in dal(dal.auth_user).select()}
    )
    via_async = {
        r["email"]: r["display_name"]
        for r in await adb.fetch_all(sa.select(auth_user.c.email, auth_user.c.display_name))
    }
    expected = {"p@x": NAME, "s@x": NAME}
    assert via_sa == via_dal == via_async == expected
    # Searching by the emoji value works too (no '?' substitution on the way in).
    found = await db.run(lambda dal: dal(dal.auth_user.display_name == NAME).count())
    assert found == 2


async def test_mariadb_tables_and_connections_are_utf8mb4(
    db: Database, engine: sa.Engine, settings: object
) -> None:
    if db.backend != "mysql":
        pytest.skip("charset/collation declarations exist on MariaDB only")
    with engine.connect() as conn:
        tables: dict[str, str] = dict(
            conn.execute(  # type: ignore[arg-type]
                sa.text(
                    "SELECT table_name, table_collation FROM information_schema.tables "
                    "WHERE table_schema = DATABASE()"
                )
            ).all()
        )
        columns = (
            conn.execute(
                sa.text(
                    "SELECT DISTINCT character_set_name FROM information_schema.columns "
                    "WHERE table_schema = DATABASE() AND character_set_name IS NOT NULL "
                    "AND table_name <> 'web2py_filesystem'"
                )
            )
            .scalars()
            .all()
        )
    for table in metadata.sorted_tables:
        assert tables[table.name] == "utf8mb4_unicode_ci", table.name
    assert columns == ["utf8mb4"]

    def session_charset(dal: DAL) -> tuple[str, str]:
        row = dal.executesql("SELECT @@character_set_client, @@character_set_connection")[0]
        return str(row[0]), str(row[1])

    assert await db.run(session_charset) == ("utf8mb4", "utf8mb4")
