"""N WebSocket clients on /api/v2/stream for D seconds; heartbeat delivery lag percentiles.

    python wsload.py WS_URL TOKEN CLIENTS SECONDS   → one JSON line
Lag = client receive wall time − the heartbeat's `ts` (same host, same clock).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import orjson
import websockets


MEASURING = asyncio.Event()  # set once every client is connected


async def client(
    url: str, token: str, seconds: float, lags: list[float], drops: list[int], ready: list[int]
) -> None:
    async with websockets.connect(f"{url}?access_token={token}", open_timeout=60, max_queue=None) as ws:
        ready.append(1)
        await MEASURING.wait()
        deadline = time.time() + seconds
        last = 0
        while time.time() < deadline:
            try:
                raw = await asyncio.wait_for(ws.recv(), 5)
            except TimeoutError:
                break
            message = orjson.loads(raw)
            if message.get("type") == "heartbeat" and time.time() < deadline:
                lags.append(time.time() - message["ts"])
                last = message["dropped"]
        drops.append(last)


async def main() -> None:
    url, token, clients, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    lags: list[float] = []
    drops: list[int] = []
    ready: list[int] = []
    tasks = []
    for _ in range(clients):  # connect in batches so the handshakes don't time out
        tasks.append(asyncio.create_task(client(url, token, seconds, lags, drops, ready)))
        if len(tasks) % 50 == 0:
            await asyncio.sleep(0.05)
    for _ in range(600):
        if len(ready) >= clients:
            break
        await asyncio.sleep(0.1)
    MEASURING.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    lags.sort()

    def pct(p: float) -> float:
        return lags[min(len(lags) - 1, int(len(lags) * p))] * 1000 if lags else float("nan")

    summary = {"clients": len(ready), "messages": len(lags), "p50_ms": pct(0.5)}
    summary |= {"p99_ms": pct(0.99), "max_ms": pct(1.0), "dropped": sum(drops)}
    print(json.dumps(summary))


if __name__ == "__main__":
    asyncio.run(main())
