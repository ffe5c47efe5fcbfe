"""The async path: fetch_one / fetch_all / execute with embedded values."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from pydal import DAL

from app.db import AsyncDatabase, Database
from app.db.schema import api_client, audit_log, auth_user

pytestmark = pytest.mark.db


async def test_core_queries_round_trip(db: Database, adb: AsyncDatabase) -> None:
    new_id = await adb.execute(
        sa.insert(auth_user).values(email="a@x", fs_uniquifier="a", display_name="A")
    )
    row = await adb.fetch_one(sa.select(auth_user).where(auth_user.c.email == "a@x"))
    assert row is not None
    assert row["id"] == new_id
    assert row["active"] is True and row["totp_enabled"] is False
    assert row["login_count"] == 0
    assert isinstance(row["created_at"], dt.datetime) and row["created_at"].tzinfo is None
    # PyDAL sees the row the async path wrote, with the same values.
    seen = await db.run(lambda dal: dal.auth_user(new_id).as_dict())
    assert seen["email"] == "a@x" and seen["active"] is True
    assert seen["created_at"].replace(microsecond=0) == row["created_at"].replace(microsecond=0)


async def test_hot_lookup_by_prefix(db: Database, adb: AsyncDatabase) -> None:
    """The shape of the identity layer's API-key lookup: indexed prefix, hash compare."""

    def seed(dal: DAL) -> None:
        owner = dal.auth_user.insert(email="o@x", fs_uniquifier="o")
        for i in range(5):
            dal.api_client.insert(
                name=f"k{i}",
                key_prefix=f"flk_{i:04d}",
                key_hash=f"h{i}",
                scopes="stats:read",
                owner_user_id=owner,
            )

    await db.run(seed)
    query = sa.select(api_client.c.id, api_client.c.key_hash, api_client.c.revoked_at).where(
        api_client.c.key_prefix == "flk_0003"
    )
    rows = await adb.fetch_all(query)
    assert [r["key_hash"] for r in rows] == ["h3"]
    assert rows[0]["revoked_at"] is None


async def test_update_fills_onupdate_and_text_queries_take_values(
    db: Database, adb: AsyncDatabase
) -> None:
    await adb.execute(sa.insert(auth_user).values(email="u@x", fs_uniquifier="u"))
    before = await adb.fetch_one(sa.select(auth_user.c.updated_at))
    assert before is not None
    await adb.execute(sa.update(auth_user).where(auth_user.c.email == "u@x").values(active=False))
    row = await adb.fetch_one(sa.select(auth_user.c.updated_at))
    assert row is not None and row["updated_at"] >= before["updated_at"]
    text = await adb.fetch_one(
        "SELECT email FROM auth_user WHERE email = :email AND login_count = :n",
        {"email": "u@x", "n": 0},
    )
    assert text == {"email": "u@x"}
    flag = await adb.fetch_one(sa.select(auth_user.c.active).where(auth_user.c.email == "u@x"))
    assert flag == {"active": False}


async def test_core_query_with_separate_values_is_refused(adb: AsyncDatabase) -> None:
    query = sa.select(auth_user).where(auth_user.c.email == sa.bindparam("email"))
    with pytest.raises(TypeError, match="embed values"):
        await adb.fetch_one(query, {"email": "a@x"})


async def test_audit_rows_from_both_layers(db: Database, adb: AsyncDatabase) -> None:
    await adb.execute(
        sa.insert(audit_log).values(action="login", target="a@x", details='{"ok": true}')
    )
    await db.run(
        lambda dal: dal.audit_log.insert(action="login_failed", target="b@x", success=False)
    )
    rows = await adb.fetch_all(
        sa.select(audit_log.c.action, audit_log.c.success).order_by(audit_log.c.id)
    )
    assert rows == [
        {"action": "login", "success": True},
        {"action": "login_failed", "success": False},
    ]
