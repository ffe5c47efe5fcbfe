"""Login throughput against a running control plane: bounded by argon2id by design.

Usage: logins.py BASE_URL SECONDS CONCURRENCY — prints `logins_per_s=<n> errors=<n>`.
"""

from __future__ import annotations

import asyncio
import sys
import time

import httpx


async def _worker(client: httpx.AsyncClient, deadline: float, counts: dict[str, int]) -> None:
    body = {"email": "admin@localhost.local", "password": "admin123"}
    while time.monotonic() < deadline:
        response = await client.post("/api/v2/auth/login", json=body)
        counts["ok" if response.status_code == 200 else "errors"] += 1


async def main(base: str, seconds: float, concurrency: int) -> None:
    counts = {"ok": 0, "errors": 0}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        start = time.monotonic()
        deadline = start + seconds
        await asyncio.gather(*(_worker(client, deadline, counts) for _ in range(concurrency)))
        elapsed = time.monotonic() - start
    print(f"logins_per_s={counts['ok'] / elapsed:.1f} errors={counts['errors']}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3])))
