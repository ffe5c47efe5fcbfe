"""Point-select throughput through Floe's two database paths, side by side in one run.

PyDAL `Database.run` (worker threads, pooled, one unit of work per call) against
`AsyncDatabase.fetch_one` (`databases` over asyncpg / aiomysql / aiosqlite), each with
50 concurrent tasks on one event loop. Every backend gets a fresh scratch database.
Bounded: QUERIES per path per backend (default 2000).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from app.config import load_settings
from app.db import AsyncDatabase, Database, initialise_schema
from app.db.schema import auth_user
from tests.support.databases import fresh_database

__all__ = ["main"]

QUERIES = int(os.environ.get("BENCH_DB_QUERIES", "2000"))
CONCURRENCY = 50
ROWS = 200


async def _drive(call: object, total: int) -> float:
    done = 0

    async def worker() -> None:
        nonlocal done
        while done < total:
            done += 1
            await call(done % ROWS + 1)  # type: ignore[operator]

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return total / (time.perf_counter() - start)


async def bench(backend: str, tmp: Path) -> tuple[float, float]:
    gen = fresh_database(backend, tmp)
    env = next(gen)
    try:
        settings = load_settings({**env, "FLOE_DATA_DIR": str(tmp), "DB_POOL_SIZE": "10"})
        initialise_schema(settings)
        db = Database(settings)
        await db.start()
        adb = AsyncDatabase(settings)
        await adb.connect()
        try:
            await db.run(
                lambda dal: [
                    dal.auth_user.insert(email=f"u{i}@x", fs_uniquifier=secrets.token_hex(8))
                    for i in range(ROWS)
                ]
            )

            async def via_pydal(i: int) -> None:
                await db.run(lambda dal: dal.auth_user(i).email)

            async def via_async(i: int) -> None:
                await adb.fetch_one(sa.select(auth_user.c.email).where(auth_user.c.id == i))

            await _drive(via_pydal, 200)  # warm-up
            await _drive(via_async, 200)
            pydal_qps = await _drive(via_pydal, QUERIES)
            async_qps = await _drive(via_async, QUERIES)
            return pydal_qps, async_qps
        finally:
            await adb.disconnect()
            await db.close()
    finally:
        gen.close()


def main() -> int:
    print(f"python {sys.version.split()[0]} ({sys.executable}); {QUERIES} point selects "
          f"per path, {CONCURRENCY} concurrent tasks, pool 10")
    print(f"{'backend':<11} {'PyDAL run q/s':>14} {'async q/s':>10} {'async/PyDAL':>12}")
    with tempfile.TemporaryDirectory(prefix="floe-bench-db-") as tmp:
        for backend in ("sqlite", "postgresql", "mysql"):
            pydal_qps, async_qps = asyncio.run(bench(backend, Path(tmp)))
            print(f"{backend:<11} {pydal_qps:>14.0f} {async_qps:>10.0f} "
                  f"{async_qps / pydal_qps:>11.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
