"""The baseline: a bare Quart app on hypercorn (same listeners as Floe), no Floe layers.

python bare_app.py HTTP_PORT HTTPS_PORT CERT KEY
"""

from __future__ import annotations

import sys

import uvloop
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart

app = Quart("bare")


@app.get("/api/v2/ping")
async def ping() -> dict[str, object]:
    return {"status": "success", "data": {"pong": True}}


def main() -> None:
    http_port, https_port, cert, key = sys.argv[1:5]
    config = Config()
    config.bind = [f"127.0.0.1:{https_port}"]
    config.insecure_bind = [f"127.0.0.1:{http_port}"]
    config.quic_bind = [f"127.0.0.1:{https_port}"]
    config.certfile, config.keyfile = cert, key
    config.accesslog = None
    config.include_server_header = False
    # Same as Floe's KEEP_ALIVE_MAX_REQUESTS default: hypercorn's 1000 closes each h2
    # connection after 1000 requests and h2load does not reconnect, which capped the
    # baseline at 16 x 1000 requests per run (~2000 req/s for 8 s).
    config.keep_alive_max_requests = 100_000
    uvloop.run(serve(app, config))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
