"""Trap: PyDAL and SQLAlchemy must read each other's booleans, true AND false."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from pydal import DAL

from app.db import AsyncDatabase, Database
from app.db.schema import auth_user

pytestmark = pytest.mark.db


async def test_pydal_writes_sqlalchemy_reads(db: Database, engine: sa.Engine) -> None:
    def write(dal: DAL) -> None:
        dal.auth_user.insert(email="t@x", fs_uniquifier="t", active=True, totp_enabled=True)
        dal.auth_user.insert(email="f@x", fs_uniquifier="f", active=False, totp_enabled=False)

    await db.run(write)
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.select(auth_user.c.email, auth_user.c.active)).all())
        flags = dict(conn.execute(sa.select(auth_user.c.email, auth_user.c.totp_enabled)).all())
        active = (
            conn.execute(
                sa.select(auth_user.c.email).where(auth_user.c.active == True)  # noqa: E712
            )
            .scalars()
            .all()
        )
    assert rows == {"t@x": True, "f@x": False}
    assert flags == {"t@x": True, "f@x": False}
    assert active == ["t@x"]


async def test_sqlalchemy_writes_pydal_reads(db: Database, engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(auth_user),
            [
                {"email": "t@x", "fs_uniquifier": "t", "active": True, "totp_enabled": True},
                {"email": "f@x", "fs_uniquifier": "f", "active": False, "totp_enabled": False},
            ],
        )

    def read(dal: DAL) -> tuple[dict[str, bool], list[str], list[str]]:
        values = {r.email: r.active for r in dal(dal.auth_user).select()}
        on = [r.email for r in dal(dal.auth_user.active == True).select()]  # noqa: E712
        off = [r.email for r in dal(dal.auth_user.totp_enabled == False).select()]  # noqa: E712
        return values, on, off

    values, on, off = await db.run(read)
    assert values == {"t@x": True, "f@x": False}
    assert on == ["t@x"]
    assert off == ["f@x"]


async def test_defaults_agree(db: Database, engine: sa.Engine) -> None:
    """Defaults applied by either layer read the same in both (active=T, totp=F)."""
    await db.run(lambda dal: dal.auth_user.insert(email="p@x", fs_uniquifier="p"))
    with engine.begin() as conn:
        conn.execute(sa.insert(auth_user).values(email="s@x", fs_uniquifier="s"))
        via_sa = {
            r.email: (r.active, r.totp_enabled) for r in conn.execute(sa.select(auth_user)).all()
        }
    via_dal = await db.run(
        lambda dal: {r.email: (r.active, r.totp_enabled) for r in dal(dal.auth_user).select()}
    )
    assert via_sa == via_dal == {"p@x": (True, False), "s@x": (True, False)}


async def test_async_path_reads_booleans(db: Database, adb: AsyncDatabase) -> None:
    await db.run(
        lambda dal: [
            dal.auth_user.insert(email="t@x", fs_uniquifier="t", active=True),
            dal.auth_user.insert(email="f@x", fs_uniquifier="f", active=False),
        ]
    )
    rows = await adb.fetch_all(
        sa.select(auth_user.c.email, auth_user.c.active).order_by(auth_user.c.email)
    )
    assert [(r["email"], r["active"]) for r in rows] == [("f@x", False), ("t@x", True)]
    only_false = await adb.fetch_all(
        sa.select(auth_user.c.email).where(auth_user.c.active == False)  # noqa: E712
    )
    assert [r["email"] for r in only_false] == ["f@x"]
