"""N WebSocket clients on /api/v2/stream for D seconds; heartbeat delivery lag percentiles.

    python wsload.py WS_URL TOKEN CLIENTS SECONDS   → one JSON line

A deliberately light client (raw asyncio protocol, minimal RFC 6455 framing for the small
unmasked text frames the server sends) so that 1000 connections at 10 Hz measure the
server, not the client: the `websockets` library on one core saturated first (server
at ~27 % CPU while the client lagged by a second). Lag = receive wall time - the
heartbeat's `ts` (same host, same clock), counted once every client is connected.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.serving.procstat import runqueue_wait

TS = re.compile(rb'"ts":([0-9.eE+-]+)')
DROPPED = re.compile(rb'"dropped":(\d+)')


class Stats:
    def __init__(self) -> None:
        self.lags: list[float] = []
        self.dropped: dict[int, int] = {}
        self.measuring = False
        self.bad = 0


class Client(asyncio.Protocol):
    def __init__(self, stats: Stats, ident: int, handshake_done: asyncio.Future[None]) -> None:
        self.stats = stats
        self.ident = ident
        self.buffer = b""
        self.upgraded = False
        self.handshake_done = handshake_done

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            ok = self.buffer.startswith(b"HTTP/1.1 101")
            self.buffer = self.buffer[end + 4 :]
            self.upgraded = True
            if not self.handshake_done.done():
                if ok:
                    self.handshake_done.set_result(None)
                else:
                    self.handshake_done.set_exception(ConnectionError("upgrade refused"))
        now = time.time()
        buf = self.buffer
        pos = 0
        while len(buf) - pos >= 2:
            length = buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if len(buf) - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif length == 127:
                if len(buf) - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            if len(buf) - pos < head + length:
                break
            payload = buf[pos + head : pos + head + length]
            pos += head + length
            if self.stats.measuring and b'"heartbeat"' in payload:
                match = TS.search(payload)
                if match:
                    self.stats.lags.append(now - float(match.group(1)))
                dropped = DROPPED.search(payload)
                if dropped:
                    self.stats.dropped[self.ident] = int(dropped.group(1))
        self.buffer = buf[pos:]


async def connect(url: str, token: str, stats: Stats, ident: int) -> asyncio.Transport:
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    transport, _ = await loop.create_connection(
        lambda: Client(stats, ident, done), parts.hostname or "127.0.0.1", parts.port or 80
    )
    key = base64.b64encode(os.urandom(16)).decode()
    transport.write(
        (
            f"GET {parts.path}?access_token={token} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await asyncio.wait_for(done, 30)
    return transport  # type: ignore[return-value]


async def main() -> None:
    url, token, clients, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    stats = Stats()
    transports = []
    for start in range(0, clients, 50):  # connect in batches of 50
        batch = range(start, min(clients, start + 50))
        transports += await asyncio.gather(*(connect(url, token, stats, i) for i in batch))
    await asyncio.sleep(0.5)
    stats.measuring = True
    cpu0, wait0, wall0 = time.process_time(), runqueue_wait(), time.monotonic()
    await asyncio.sleep(seconds)
    stats.measuring = False
    wall = time.monotonic() - wall0
    cpu, wait = (time.process_time() - cpu0) / wall, (runqueue_wait() - wait0) / wall
    for transport in transports:
        transport.abort()
    lags = sorted(stats.lags)

    def pct(p: float) -> float:
        return lags[min(len(lags) - 1, int(len(lags) * p))] * 1000 if lags else float("nan")

    summary = {"clients": len(transports), "messages": len(lags), "p50_ms": round(pct(0.5), 1)}
    summary |= {"p99_ms": round(pct(0.99), 1), "max_ms": round(pct(1.0), 1)}
    # the client's own cores used and time waiting for a CPU: high = the client lagged
    summary |= {"client_cores": round(cpu, 2), "client_runqueue_share": round(wait, 2)}
    print(json.dumps(summary | {"dropped": sum(stats.dropped.values())}))


if __name__ == "__main__":
    asyncio.run(main())
