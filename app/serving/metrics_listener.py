"""A tiny HTTP/1.0 listener on METRICS_PORT that only answers `GET /metrics`.

Kept apart from hypercorn so scrapes keep working (and stay cheap) when the REST
listeners are saturated or refusing work; it runs on the same loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

from app.serving.metrics import CONTENT_TYPE

__all__ = ["start_metrics_listener"]

_MAX_HEADER_LINES = 100
_READ_TIMEOUT = 5.0


def _reply(status: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n"
        "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n\r\n"
    )
    return head.encode() + body


async def start_metrics_listener(
    sock: socket.socket, render: Callable[[], bytes]
) -> asyncio.Server:
    """Serve on `sock`, bound beforehand by `app.serving.listeners` (named errors)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), _READ_TIMEOUT)
            for _ in range(_MAX_HEADER_LINES):
                header = await asyncio.wait_for(reader.readline(), _READ_TIMEOUT)
                if header in (b"\r\n", b"\n", b""):
                    break
            parts = line.split()
            if (
                len(parts) >= 2
                and parts[0] in (b"GET", b"HEAD")
                and parts[1].split(b"?")[0] == b"/metrics"
            ):
                body = render()
                reply = _reply("200 OK", CONTENT_TYPE, b"" if parts[0] == b"HEAD" else body)
            else:
                reply = _reply("404 Not Found", "text/plain", b"only /metrics here\n")
            writer.write(reply)
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    return await asyncio.start_server(handle, sock=sock)
