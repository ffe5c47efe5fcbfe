"""URIs for the three libraries, built from Settings; passwords never leak into logs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.config import Settings
from app.db.urls import async_url, mask, pydal_uri, sqlalchemy_url, sqlite_path

SECRET = "p@ss:w/rd"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
def test_each_library_gets_its_dialect(
    backend: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        DB_TYPE=backend, DB_HOST="db.internal", DB_NAME="floe", DB_USER="app", DB_PASS=SECRET
    )
    sa_url = sqlalchemy_url(settings)
    dal = pydal_uri(settings)
    aurl = async_url(settings)
    if backend == "sqlite":
        path = str(settings.data_dir.resolve() / "floe.db")
        assert sa_url.drivername == "sqlite" and sa_url.database == path
        assert dal == f"sqlite://{path}"
        assert aurl == f"sqlite+aiosqlite:///{path}"
        return
    quoted = "p%40ss%3Aw%2Frd"
    if backend == "postgresql":
        assert sa_url.drivername == "postgresql+psycopg2" and sa_url.port == 5432
        assert dal == f"postgres3:psycopg2://app:{quoted}@db.internal:5432/floe"
        assert aurl == f"postgresql+asyncpg://app:{quoted}@db.internal:5432/floe"
    else:
        assert sa_url.drivername == "mysql+pymysql" and sa_url.port == 3306
        assert sa_url.query["charset"] == "utf8mb4"
        assert dal == f"mysql://app:{quoted}@db.internal:3306/floe?set_encoding=utf8mb4"
        assert aurl == f"mysql+aiomysql://app:{quoted}@db.internal:3306/floe"
    assert sa_url.password == SECRET  # SQLAlchemy quotes it itself
    for uri in (sa_url, dal, aurl):
        masked = mask(uri)
        assert SECRET not in masked and quoted not in masked and "***" in masked


def test_sqlite_path_rules(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    by_name = make_settings(DB_TYPE="sqlite", DB_NAME="floe")
    assert sqlite_path(by_name) == (by_name.data_dir / "floe.db").resolve()
    absolute = make_settings(DB_TYPE="sqlite", DB_NAME=str(tmp_path / "x.sqlite"))
    assert sqlite_path(absolute) == tmp_path / "x.sqlite"
