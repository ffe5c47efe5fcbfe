"""The control-plane schema in SQLAlchemy Core: the single source of truth.

SQLAlchemy creates the tables (`create_schema`); PyDAL's runtime definitions are derived
from this `metadata` (see `app.db.pydal_tables`), never copied by hand. Conventions:
every table has an integer autoincrement `id`; datetimes are naive UTC; booleans use
`Flag`, the one representation both layers agree on; MariaDB tables are InnoDB utf8mb4;
string lengths are enforced on SQLite too (CHECK), so no backend keeps or silently cuts
an over-long value.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.sql.schema import SchemaItem

__all__ = [
    "Flag",
    "api_client",
    "audit_log",
    "auth_role",
    "auth_user",
    "auth_user_role",
    "create_schema",
    "login_throttle",
    "metadata",
    "one_time_token",
    "recovery_code",
    "refresh_token",
    "resource_grant",
    "rule_set",
    "team",
    "team_member",
    "team_resource",
    "utcnow",
]


def utcnow() -> dt.datetime:
    """Naive UTC now: every datetime column stores naive UTC."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Flag(sa.types.TypeDecorator[bool]):
    """A boolean stored the way PyDAL stores it, so both layers read the same value.

    PostgreSQL: native BOOLEAN (PyDAL's `postgres3` adapter). MariaDB and SQLite: CHAR(1)
    holding 'T'/'F' (PyDAL's `boolean`). SQLAlchemy's own Boolean would be TINYINT/INTEGER
    there, which PyDAL writes 'T' into as 0 and SQLAlchemy reads 'F' from as True.
    """

    impl = sa.CHAR(1)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.Boolean())
        return dialect.type_descriptor(sa.CHAR(1))

    def process_bind_param(self, value: bool | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return bool(value)
        return "T" if value else "F"

    def process_result_value(self, value: Any, dialect: Dialect) -> bool | None:
        if value is None:
            return None
        if isinstance(value, str):
            return value.upper() == "T"
        return bool(value)


metadata = sa.MetaData()


def _table(name: str, *items: SchemaItem) -> sa.Table:
    """A table with the `id` primary key, MariaDB options and SQLite length checks."""
    table = sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        *items,
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    for column in table.columns:
        if isinstance(column.type, sa.String) and not isinstance(column.type, sa.Text):
            length = column.type.length
            if length and not isinstance(column.type, Flag):
                table.append_constraint(
                    sa.CheckConstraint(
                        f"length({column.name}) <= {length}", name=f"ck_{name}_{column.name}_len"
                    ).ddl_if(dialect="sqlite")
                )
    return table


def _str(name: str, length: int, **kw: Any) -> sa.Column[str]:
    return sa.Column(name, sa.String(length), **kw)


def _dt(name: str, **kw: Any) -> sa.Column[dt.datetime]:
    return sa.Column(name, sa.DateTime(), **kw)


def _flag(name: str, default: bool) -> sa.Column[bool]:
    # The server default serves writers that bypass SQLAlchemy's Python-side defaults (the
    # async path); 'T'/'F' is also valid BOOLEAN input on PostgreSQL.
    literal = "'T'" if default else "'F'"
    return sa.Column(name, Flag(), default=default, server_default=sa.text(literal), nullable=False)


def _count(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer, default=0, server_default=sa.text("0"))


def _fk(name: str, target: str, *, ondelete: str | None = None, **kw: Any) -> sa.Column[int]:
    return sa.Column(name, sa.Integer, sa.ForeignKey(f"{target}.id", ondelete=ondelete), **kw)


auth_user = _table(
    "auth_user",
    _str("email", 255, unique=True, nullable=False),
    _str("password_hash", 255),
    _flag("active", True),
    _str("fs_uniquifier", 64, unique=True, nullable=False),
    _str("display_name", 128, nullable=True),
    _dt("confirmed_at", nullable=True),
    _str("totp_secret", 255, nullable=True),
    _flag("totp_enabled", False),
    _dt("last_login_at"),
    _dt("current_login_at"),
    _str("last_login_ip", 64),
    _str("current_login_ip", 64),
    _count("login_count"),
    _count("failed_logins"),
    _dt("locked_until", nullable=True),
    _dt("password_changed_at", nullable=True),
    _dt("created_at", default=utcnow),
    _dt("updated_at", default=utcnow, onupdate=utcnow),
)

auth_role = _table(
    "auth_role",
    _str("name", 80, unique=True, nullable=False),
    _str("description", 255),
    sa.Column("scopes", sa.Text),
    _flag("builtin", False),
    _str("level", 16, default="global", server_default="global"),
    _dt("created_at", default=utcnow),
)

auth_user_role = _table(
    "auth_user_role",
    _fk("user_id", "auth_user", ondelete="CASCADE", nullable=False),
    _fk("role_id", "auth_role", nullable=False),
    sa.UniqueConstraint("user_id", "role_id", name="uq_auth_user_role"),
)

team = _table(
    "team",
    _str("name", 80, unique=True, nullable=False),
    _str("description", 255),
    _dt("created_at", default=utcnow),
)

team_member = _table(
    "team_member",
    _fk("team_id", "team", ondelete="CASCADE", nullable=False),
    _fk("user_id", "auth_user", ondelete="CASCADE", nullable=False),
    _fk("role_id", "auth_role"),
    sa.UniqueConstraint("team_id", "user_id", name="uq_team_member"),
)

resource_grant = _table(
    "resource_grant",
    _fk("user_id", "auth_user", ondelete="CASCADE", nullable=False),
    _fk("role_id", "auth_role"),
    _str("resource_type", 32),
    _str("resource_id", 128),
    _dt("created_at", default=utcnow),
    sa.UniqueConstraint("user_id", "resource_type", "resource_id", name="uq_resource_grant"),
)

# Resources a team holds (today: nodes). Each member gets its team role's scopes on them.
team_resource = _table(
    "team_resource",
    _fk("team_id", "team", ondelete="CASCADE", nullable=False),
    _str("resource_type", 32),
    _str("resource_id", 128),
    _dt("created_at", default=utcnow),
    sa.UniqueConstraint("team_id", "resource_type", "resource_id", name="uq_team_resource"),
)

api_client = _table(
    "api_client",
    _str("name", 128, nullable=False),
    _str("key_prefix", 16, index=True),
    _str("key_hash", 128, unique=True, nullable=False),
    sa.Column("scopes", sa.Text),
    _fk("owner_user_id", "auth_user", ondelete="SET NULL", nullable=True),
    _dt("expires_at", nullable=True),
    _dt("last_used_at", nullable=True),
    _dt("created_at", default=utcnow),
    _dt("revoked_at", nullable=True),
    sa.Column("rotated_from_id", sa.Integer, nullable=True),
    # The node id (or `*` pattern) a dataplane key may claim in its uplink Hello.
    _str("node_id", 128, nullable=True),
)

refresh_token = _table(
    "refresh_token",
    _fk("user_id", "auth_user", ondelete="CASCADE", nullable=False),
    _str("family_id", 64, index=True),
    _str("token_hash", 128, unique=True),
    _dt("issued_at", default=utcnow),
    _dt("expires_at"),
    _dt("used_at", nullable=True),
    _dt("revoked_at", nullable=True),
)

recovery_code = _table(
    "recovery_code",
    _fk("user_id", "auth_user", ondelete="CASCADE", nullable=False),
    _str("code_hash", 255),
    _dt("used_at", nullable=True),
)

one_time_token = _table(
    "one_time_token",
    _str("purpose", 32),
    _str("token_hash", 128, unique=True),
    _fk("user_id", "auth_user", ondelete="CASCADE", nullable=False),
    _dt("expires_at"),
    _dt("used_at", nullable=True),
)

audit_log = _table(
    "audit_log",
    _dt("at", default=utcnow, index=True),
    sa.Column("actor_user_id", sa.Integer, nullable=True),
    sa.Column("actor_client_id", sa.Integer, nullable=True),
    _str("action", 64, index=True),
    _str("target", 255),
    _str("ip", 64),
    sa.Column("details", sa.Text),
    _flag("success", True),
)


# Filter rule sets, one row per generation (newest = current); rules as a JSON array. LONGTEXT
# on MariaDB: TEXT stops at 64 KiB and a rule set may hold 100k rules.
rule_set = _table(
    "rule_set",
    sa.Column("generation", sa.Integer, unique=True, nullable=False),
    _str("default_action", 8, nullable=False),
    sa.Column("rules", sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")),
    sa.Column("actor_user_id", sa.Integer, nullable=True),
    sa.Column("actor_client_id", sa.Integer, nullable=True),
    _dt("created_at", default=utcnow),
)


# Failed-login ceiling per email, known or not (app/identity/tokens.py): one row per email
# hash with a fixed window; rows whose window ended are pruned.
login_throttle = _table(
    "login_throttle",
    _str("email_hash", 64, unique=True, nullable=False),
    _dt("window_start", nullable=False),
    _count("attempts"),
)


def create_schema(bind: Engine | Connection, schema: sa.MetaData = metadata) -> list[str]:
    """Create the tables that do not exist yet; returns the names it created.

    Existing tables are left alone: adding columns to them is PyDAL's additive migration.
    """
    inspector = sa.inspect(bind)
    existing = set(inspector.get_table_names())
    missing = [t for t in schema.sorted_tables if t.name not in existing]
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            schema.create_all(conn, tables=missing, checkfirst=True)
    else:
        schema.create_all(bind, tables=missing, checkfirst=True)
    return [t.name for t in missing]
