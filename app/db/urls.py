"""Connection URIs for the three database libraries, built from `Settings`.

One place knows how each library spells a backend: SQLAlchemy (schema creation),
PyDAL (runtime CRUD and migrations) and `databases` (the async hot path). Credentials are
percent-quoted so any password works, and `mask()` hides them before anything is logged.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import URL

from app.config import Settings

__all__ = ["async_url", "mask", "pydal_uri", "sqlalchemy_url", "sqlite_path"]

_DEFAULT_USER = {"postgresql": "postgres", "mysql": "root"}


def sqlite_path(settings: Settings) -> Path:
    """DB_NAME as a file: an absolute path (or one with a suffix) is used as given,
    otherwise `<FLOE_DATA_DIR>/<DB_NAME>.db`."""
    name = Path(settings.db_name)
    if name.is_absolute() or name.suffix:
        path = name
    else:
        path = settings.data_dir / f"{settings.db_name}.db"
    return path.resolve()


def _user(settings: Settings) -> str:
    return settings.db_user or _DEFAULT_USER.get(settings.db_type, "")


def _credentials(settings: Settings) -> str:
    user = quote(_user(settings), safe="")
    password = quote(settings.db_pass, safe="")
    return f"{user}:{password}@"


def _server(settings: Settings) -> str:
    return f"{settings.db_host}:{settings.effective_db_port}/{settings.db_name}"


def sqlalchemy_url(settings: Settings) -> URL:
    """SQLAlchemy: postgresql+psycopg2, mysql+pymysql (utf8mb4), sqlite."""
    if settings.db_type == "sqlite":
        return URL.create("sqlite", database=str(sqlite_path(settings)))
    driver = {"postgresql": "postgresql+psycopg2", "mysql": "mysql+pymysql"}[settings.db_type]
    query = {"charset": "utf8mb4"} if settings.db_type == "mysql" else {}
    return URL.create(
        driver,
        username=_user(settings) or None,
        password=settings.db_pass or None,
        host=settings.db_host,
        port=settings.effective_db_port,
        database=settings.db_name,
        query=query,
    )


def pydal_uri(settings: Settings) -> str:
    """PyDAL: `postgres3:psycopg2` (native BOOLEAN), mysql with utf8mb4, sqlite by path.

    Credentials are quoted: open the DAL with `decode_credentials=True`.
    """
    if settings.db_type == "sqlite":
        return f"sqlite://{sqlite_path(settings)}"
    if settings.db_type == "postgresql":
        return f"postgres3:psycopg2://{_credentials(settings)}{_server(settings)}"
    return f"mysql://{_credentials(settings)}{_server(settings)}?set_encoding=utf8mb4"


def async_url(settings: Settings) -> str:
    """`databases`: postgresql+asyncpg, mysql+aiomysql, sqlite+aiosqlite (see AsyncDatabase
    for the connection options: utf8mb4 and strict mode on MariaDB)."""
    if settings.db_type == "sqlite":
        return f"sqlite+aiosqlite:///{sqlite_path(settings)}"
    if settings.db_type == "postgresql":
        return f"postgresql+asyncpg://{_credentials(settings)}{_server(settings)}"
    return f"mysql+aiomysql://{_credentials(settings)}{_server(settings)}"


_PASSWORD = re.compile(r"(?P<head>://[^:/@]*:)(?P<password>[^@]*)(?P<tail>@)")


def mask(uri: str | URL) -> str:
    """The URI with its password replaced by `***`, safe to log."""
    if isinstance(uri, URL):
        return uri.render_as_string(hide_password=True)
    return _PASSWORD.sub(r"\g<head>***\g<tail>", uri)
