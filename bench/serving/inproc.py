"""In-process cost of one request through Floe's app, without sockets: µs per request.

    PYTHONPATH=<checkout> .venv/bin/python bench/serving/inproc.py [ROUNDS] [N]

Drives the ASGI app the way hypercorn does (`receive` is an `asyncio.Queue.get` that already
holds the body message; `send` collects), on uvloop, after the app's start-up (SQLite in a
temporary directory; gRPC, metrics listener and HTTP/3 off; the same GC tuning). It counts
this process's CPU time, so other processes on the machine disturb it less than wall time.
Prints the median µs per request over ROUNDS rounds of N requests for `GET /api/v2/ping` and
for a 404, and — to include what the response headers cost on the wire — for the ping plus
h11 validating and serialising its response head.
Point PYTHONPATH at another checkout (e.g. a `git archive` of the previous commit) to compare.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from typing import Any

import h11
import uvloop


async def _measure(app: Any, path: str, n: int, wire: bool) -> float:
    scope_base = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"localhost"), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8080), "extensions": {},
    }
    heads: list[list[tuple[bytes, bytes]]] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            heads.append(message["headers"])

    started = time.process_time()
    for _ in range(n):
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        queue.put_nowait({"type": "http.request", "body": b"", "more_body": False})
        queue.put_nowait({"type": "http.disconnect"})
        await app(dict(scope_base), queue.get, send)
        if wire:  # what hypercorn's h11 protocol does with the head (validation + bytes)
            conn = h11.Connection(h11.SERVER)
            conn.receive_data(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            conn.next_event()
            conn.send(h11.Response(status_code=200, headers=heads[-1]))
    return (time.process_time() - started) / n * 1e6


async def main(rounds: int, n: int) -> None:
    from app.config import load_settings
    from app.factory import create_app

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings({
            "FLOE_DATA_DIR": tmp, "SECRET_KEY": "bench-secret-key-0123456789-0123456789",
            "GRPC_ENABLED": "false", "METRICS_ENABLED": "false", "HTTP3_ENABLED": "false",
        })
        app = create_app(settings)
        async with app.test_app():
            from app.serving.run import tune_gc

            tune_gc()  # as `floe serve` does after start-up
            await _measure(app, "/api/v2/ping", 500, False)  # warm-up
            results: dict[str, list[float]] = {"ping": [], "404": [], "ping+h11 head": []}
            for _ in range(rounds):
                results["ping"].append(await _measure(app, "/api/v2/ping", n, False))
                results["404"].append(await _measure(app, "/api/v2/nope", n, False))
                results["ping+h11 head"].append(await _measure(app, "/api/v2/ping", n, True))
    for name, values in results.items():
        print(f"{name:<14} median {statistics.median(values):7.1f} µs  "
              f"(rounds: {', '.join(f'{v:.1f}' for v in values)})")


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 7,
                    int(sys.argv[2]) if len(sys.argv) > 2 else 2000))
