"""A few lines of raw HTTP/1.1 over a socket, for tests that must send what clients refuse to."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

import orjson

__all__ = ["RawResponse", "read_response"]


@dataclass(slots=True)
class RawResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    closed: bool = False  # the server closed the connection after this response

    def json(self) -> dict:  # type: ignore[type-arg]
        value = orjson.loads(self.body)
        assert isinstance(value, dict)
        return value


def read_response(
    sock: socket.socket, *, timeout: float = 5.0, wait_close: float = 0.0
) -> RawResponse:
    """Read one response (Content-Length framed); then, for `wait_close` seconds, whether the
    server closes the connection (EOF) rather than keeping it open."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    response = RawResponse(status, headers, rest[:length])
    if wait_close > 0:
        sock.settimeout(wait_close)
        try:
            response.closed = sock.recv(1) == b""
        except TimeoutError:
            response.closed = False
        except ConnectionResetError:
            response.closed = True
    return response
