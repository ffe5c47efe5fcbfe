"""The assumption behind admission control's timer-free fast path, checked against hypercorn.

`AdmissionMiddleware` takes a body that arrived with the request head with `get_nowait()`
from hypercorn's app queue (`receive` is that queue's `get`), and only a body still to come
costs a timer and counts as uploading. If a hypercorn upgrade changes this, the middleware
stays correct but pays a timer per request and counts every request as an upload: this test
says so.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config

from tests.support.ports import free_port


async def test_a_body_sent_with_the_head_is_already_queued() -> None:
    seen: list[tuple[str, bool]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        queue = getattr(receive, "__self__", None)
        assert type(queue) is asyncio.Queue
        complete = False
        while not complete and not queue.empty():  # what admission does without waiting
            complete = not queue.get_nowait().get("more_body", False)
        seen.append((f"{scope['http_version']} {scope['method']}", complete))
        while not complete:
            complete = not (await receive()).get("more_body", False)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        url = f"http://127.0.0.1:{port}/x"
        for _ in range(100):
            try:
                async with httpx.AsyncClient() as client:
                    await client.get(url)
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        seen.clear()
        async with httpx.AsyncClient() as h1, httpx.AsyncClient(http1=False, http2=True) as h2c:
            for client in (h1, h2c):
                await client.get(url)
            await h1.post(url, content=b'{"small": "body"}')
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    # (an h2 body comes in DATA frames that may follow the app's start: not asserted)
    assert seen == [("1.1 GET", True), ("2 GET", True), ("1.1 POST", True)]
