"""HTTP/3 load: C connections each sending requests back to back for D seconds.

python h3load.py PORT CERT CONNECTIONS SECONDS [PATH]   → one JSON line
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.h3client import h3_connect


async def worker(
    port: int, cert: str, seconds: float, path: str, lat: list[float], errors: list[str]
) -> None:
    try:
        async with h3_connect("127.0.0.1", port, cafile=cert) as client:
            deadline = time.perf_counter() + seconds
            while (now := time.perf_counter()) < deadline:
                try:
                    response = await client.request("GET", path, timeout=5)
                except TimeoutError:
                    errors.append("timeout")
                    continue
                if response.status == 200:
                    lat.append(time.perf_counter() - now)
                else:
                    errors.append(str(response.status))
    except Exception as error:  # a connection that fails is reported, not fatal
        errors.append(type(error).__name__)


async def main() -> None:
    port, cert, conns, seconds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    rest = [a for a in sys.argv[5:] if a != "--json"]
    path = rest[0] if rest else "/api/v2/ping"
    lat: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    await asyncio.gather(*(worker(port, cert, seconds, path, lat, errors) for _ in range(conns)))
    elapsed = time.perf_counter() - started
    lat.sort()
    p99 = lat[int(len(lat) * 0.99) - 1] if lat else float("nan")
    if "--json" in sys.argv:
        summary = {"rps": len(lat) / elapsed, "p99_ms": p99 * 1000, "ok": len(lat)}
        kinds = {k: errors.count(k) for k in set(errors)}
        print(json.dumps(summary | {"errors": len(errors), "error_kinds": kinds}))
    else:  # "rps p99_ms errors" for run.sh
        print(f"{len(lat) / elapsed:.0f} {p99 * 1000:.1f} {len(errors)}")


if __name__ == "__main__":
    asyncio.run(main())
