"""A small HTTP/3 client over aioquic, for tests and the HTTP/3 benchmark.

    async with h3_connect("127.0.0.1", port, cafile=cert) as client:
        response = await client.request("GET", "/api/v2/ping")

Debian's curl has no HTTP/3 and h2load has no h3, so this is the project's H3 client.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent

__all__ = ["H3Client", "H3Response", "h3_connect"]


@dataclass(slots=True)
class H3Response:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        key = name.lower().encode()
        for k, v in self.headers:
            if k == key:
                return v.decode()
        return None


class H3Client(QuicConnectionProtocol):
    """QUIC connection protocol speaking HTTP/3; one instance per connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._http = H3Connection(self._quic)
        self._pending: dict[int, tuple[H3Response, asyncio.Future[H3Response]]] = {}
        self.authority = b"localhost"

    @property
    def received_settings(self) -> dict[int, int]:
        """The server's HTTP/3 SETTINGS (empty until they have arrived)."""
        return dict(self._http.received_settings or {})

    def quic_event_received(self, event: QuicEvent) -> None:
        for h3_event in self._http.handle_event(event):
            self._h3_event(h3_event)

    def _h3_event(self, event: H3Event) -> None:
        if not isinstance(event, HeadersReceived | DataReceived):
            return
        entry = self._pending.get(event.stream_id)
        if entry is None:
            return
        response, waiter = entry
        if isinstance(event, HeadersReceived):
            for key, value in event.headers:
                if key == b":status":
                    response.status = int(value)
                else:
                    response.headers.append((key, value))
        else:
            response.body += event.data
        if event.stream_ended:
            del self._pending[event.stream_id]
            if not waiter.done():
                waiter.set_result(response)

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        timeout: float = 10.0,
    ) -> H3Response:
        stream_id = self._quic.get_next_available_stream_id()
        request_headers = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", self.authority),
            (b":path", path.encode()),
            *((k.lower().encode(), v.encode()) for k, v in headers),
        ]
        waiter: asyncio.Future[H3Response] = asyncio.get_running_loop().create_future()
        self._pending[stream_id] = (H3Response(), waiter)
        self._http.send_headers(stream_id, request_headers, end_stream=not body)
        if body:
            self._http.send_data(stream_id, body, end_stream=True)
        self.transmit()
        try:
            return await asyncio.wait_for(waiter, timeout)
        finally:
            self._pending.pop(stream_id, None)


@asynccontextmanager
async def h3_connect(
    host: str, port: int, *, cafile: str | Path | None = None, verify: bool = True
) -> AsyncIterator[H3Client]:
    configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN)
    if cafile is not None:
        configuration.load_verify_locations(str(cafile))
    if not verify:
        configuration.verify_mode = ssl.CERT_NONE
    configuration.server_name = "localhost"
    async with connect(host, port, configuration=configuration, create_protocol=H3Client) as client:
        assert isinstance(client, H3Client)
        client.authority = f"localhost:{port}".encode()
        yield client
