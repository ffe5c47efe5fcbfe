"""PyDAL's tables are derived from the SQLAlchemy metadata and match the real database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from pydal import DAL

from app.db import Database, metadata

pytestmark = pytest.mark.db


def _describe(dal: DAL) -> dict[str, dict[str, tuple[str, int | None, bool, bool]]]:
    out: dict[str, dict[str, tuple[str, int | None, bool, bool]]] = {}
    for name in dal.tables:
        if name == "web2py_filesystem":
            continue
        table = dal[name]
        out[name] = {
            f.name: (str(f.type), f.length if f.type == "string" else None, f.notnull, f.unique)
            for f in table
        }
    return out


async def test_every_column_is_mirrored(db: Database, engine: sa.Engine) -> None:
    described = await db.run(_describe)
    assert set(described) == {t.name for t in metadata.sorted_tables}
    inspector = sa.inspect(engine)
    for table in metadata.sorted_tables:
        fields = described[table.name]
        # Same columns as the metadata and as the live database.
        assert set(fields) == {c.name for c in table.columns}
        assert set(fields) == {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name == "id":
                assert fields["id"][0] == "id"
                continue
            ftype, length, notnull, unique = fields[column.name]
            assert notnull == (not column.nullable), (table.name, column.name)
            assert unique == bool(column.unique), (table.name, column.name)
            if column.foreign_keys:
                target = next(iter(column.foreign_keys)).column.table.name
                assert ftype == f"reference {target}"
            elif isinstance(column.type, sa.String) and not isinstance(column.type, sa.Text):
                assert ftype == "string" and length == column.type.length


async def test_defaults_and_update_hooks_are_derived(db: Database) -> None:
    def check(dal: DAL) -> tuple[object, object, object, object]:
        user = dal.auth_user
        return (
            user.active.default,
            user.login_count.default,
            user.created_at.default,
            user.updated_at.update,
        )

    active, count, created, updated = await db.run(check)
    assert active is True and count == 0
    assert callable(created) and callable(updated)
