"""Units of work: commit, rollback, thread safety, error mapping."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest
from pydal import DAL

from app.config import Settings
from app.db import Database, DatabaseUnavailable, IntegrityError, utcnow
from app.logging import correlation_id

pytestmark = pytest.mark.db


def _add_user(email: str) -> Callable[[DAL], int]:
    def unit(dal: DAL) -> int:
        return int(
            dal.auth_user.insert(
                email=email, password_hash="x", fs_uniquifier=email, created_at=utcnow()
            )
        )

    return unit


async def test_insert_commits_and_reads_back(db: Database) -> None:
    user_id = await db.run(_add_user("a@example.org"))
    row = await db.run(lambda dal: dal.auth_user(user_id))
    assert row is not None
    assert row.email == "a@example.org"
    assert row.active is True
    assert row.totp_enabled is False
    assert row.login_count == 0


async def test_exception_rolls_back(db: Database) -> None:
    def failing(dal: DAL) -> None:
        dal.auth_user.insert(email="b@example.org", fs_uniquifier="b")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await db.run(failing)
    count = await db.run(lambda dal: dal(dal.auth_user.email == "b@example.org").count())
    assert count == 0


async def test_unique_violation_maps_to_integrity_error(db: Database) -> None:
    await db.run(_add_user("dup@example.org"))
    with pytest.raises(IntegrityError):
        await db.run(_add_user("dup@example.org"))
    # The worker survives the failed unit and its connection is usable again.
    assert await db.run(lambda dal: dal(dal.auth_user).count()) == 1


async def test_concurrent_units_use_separate_threads_and_dals(db: Database) -> None:
    seen: set[tuple[int, int]] = set()
    lock = threading.Lock()

    def unit(dal: DAL) -> int:
        with lock:
            seen.add((threading.get_ident(), id(dal)))
        return int(dal.executesql("SELECT 1")[0][0])

    results = await asyncio.gather(*(db.run(unit) for _ in range(40)))
    assert results == [1] * 40
    threads = {t for t, _ in seen}
    dals = {d for _, d in seen}
    assert len(threads) == len(dals)  # one DAL per thread, never shared
    assert 1 <= len(threads) <= db.settings.db_pool_size


async def test_concurrent_inserts_all_land(db: Database) -> None:
    ids = await asyncio.gather(*(db.run(_add_user(f"u{i}@example.org")) for i in range(30)))
    assert len(set(ids)) == 30
    assert await db.run(lambda dal: dal(dal.auth_user).count()) == 30


async def test_tables_follow_the_schema(db: Database) -> None:
    names = await db.run(lambda dal: list(dal.tables))
    assert set(db.tables) <= set(names)
    assert "auth_user" in db.tables and "audit_log" in db.tables


async def test_queue_is_bounded_and_rejections_counted(settings: Settings) -> None:
    database = Database(settings, max_pending=3)
    await database.start()
    try:

        def slow(dal: DAL) -> int:
            time.sleep(0.2)
            return 1

        results = await asyncio.gather(
            *(database.run(slow) for _ in range(6)), return_exceptions=True
        )
        rejected = [r for r in results if isinstance(r, DatabaseUnavailable)]
        assert len(rejected) == 3 and results.count(1) == 3
        assert database.stats.rejected == 3
    finally:
        await database.close()


async def test_correlation_id_reaches_the_worker(db: Database) -> None:
    token = correlation_id.set("req-42")
    try:
        assert await db.run(lambda dal: correlation_id.get()) == "req-42"
    finally:
        correlation_id.reset(token)
