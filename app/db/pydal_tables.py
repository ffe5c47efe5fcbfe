"""PyDAL table definitions derived from the SQLAlchemy metadata (never hand-copied).

Each Core column becomes a PyDAL `Field` of the matching type, length, nullability,
uniqueness, default and foreign-key action, so the two layers cannot drift apart. Table
and index DDL stays SQLAlchemy's; PyDAL only ever adds columns (additive migrations).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from pydal import DAL, Field

from app.db.schema import Flag

__all__ = ["define_tables", "field_for"]


def _field_type(column: sa.Column[Any]) -> tuple[str, dict[str, Any]]:
    foreign_keys = list(column.foreign_keys)
    if foreign_keys:
        fk = foreign_keys[0]
        ondelete = (fk.ondelete or "NO ACTION").upper()
        return f"reference {fk.column.table.name}", {"ondelete": ondelete}
    kind = column.type
    if isinstance(kind, Flag):
        return "boolean", {}
    if isinstance(kind, sa.Text):
        return "text", {}
    if isinstance(kind, sa.String):
        return "string", {"length": kind.length or 255}
    if isinstance(kind, sa.DateTime):
        return "datetime", {}
    if isinstance(kind, sa.Date):
        return "date", {}
    if isinstance(kind, sa.BigInteger):
        return "bigint", {}
    if isinstance(kind, sa.Integer):
        return "integer", {}
    if isinstance(kind, sa.Float):
        return "double", {}
    raise TypeError(f"no PyDAL type for {column.table.name}.{column.name}: {kind!r}")


def _default(column: sa.Column[Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key, source in (("default", column.default), ("update", column.onupdate)):
        if isinstance(source, sa.ColumnDefault):
            arg = source.arg
            if source.is_callable:
                # SQLAlchemy wraps callables to take an execution context; PyDAL calls with none.
                fn: Callable[..., Any] = getattr(arg, "__wrapped__", arg)
                options[key] = fn
            elif source.is_scalar:
                options[key] = arg
    return options


def field_for(column: sa.Column[Any]) -> Field:
    """The PyDAL Field mirroring one SQLAlchemy column."""
    ftype, options = _field_type(column)
    options.update(_default(column))
    return Field(
        column.name,
        ftype,
        notnull=not column.nullable,
        unique=bool(column.unique),
        **options,
    )


def define_tables(
    dal: DAL,
    metadata: sa.MetaData,
    *,
    migrate: bool = False,
    fake_migrate: Iterable[str] = (),
) -> None:
    """Define every metadata table on `dal`; tables in `fake_migrate` only record state."""
    faked = set(fake_migrate)
    for table in metadata.sorted_tables:
        fields = [field_for(c) for c in table.columns if c.name != "id"]
        dal.define_table(
            table.name,
            *fields,
            migrate=migrate,
            fake_migrate=table.name in faked,
        )
