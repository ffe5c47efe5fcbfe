"""Admission control over a real socket: hypercorn in-process, a route held open on purpose."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from hypercorn.asyncio import serve as hypercorn_serve
from quart import Quart, Response

from app.api.access import public
from app.api.envelope import ok
from app.config import Settings
from app.factory import create_app
from app.serving.run import build_hypercorn_config
from tests.support.ports import free_port

LIMIT = 3


@pytest.fixture
async def held_server(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[tuple[str, asyncio.Event]]:
    port = free_port()
    settings = make_settings(
        HTTP_PORT=str(port),
        HTTPS_PORT="0",
        BIND_HOST="127.0.0.1",
        MAX_INFLIGHT_REQUESTS=str(LIMIT),
        METRICS_ENABLED="true",
    )
    app: Quart = create_app(settings)
    release = asyncio.Event()

    @app.get("/api/v2/_held")
    @public
    async def held() -> Response:
        await release.wait()
        return ok({"released": True})

    stop = asyncio.Event()
    task = asyncio.create_task(
        hypercorn_serve(app, build_hypercorn_config(settings), shutdown_trigger=stop.wait)
    )  # type: ignore[arg-type]
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as probe:
        for _ in range(100):
            try:
                await probe.get(f"{base}/healthz")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    try:
        yield base, release
    finally:
        release.set()
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_past_the_bound_503_with_retry_after(held_server: tuple[str, asyncio.Event]) -> None:
    base, release = held_server
    limits = httpx.Limits(max_connections=LIMIT + 5)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        held = [asyncio.create_task(client.get(f"{base}/api/v2/_held")) for _ in range(LIMIT)]
        for _ in range(100):  # wait until all are in flight
            metrics = (await client.get(f"{base}/metrics")).text
            if f"floe_http_inflight_requests {LIMIT}.0" in metrics:
                break
            await asyncio.sleep(0.02)
        refused = await client.get(f"{base}/api/v2/ping")
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        body = refused.json()
        assert body["status"] == "error" and body["error"]["code"] == "overloaded"
        assert body["meta"]["request_id"] == refused.headers["X-Request-ID"]
        # probes and anonymous metrics are exempt
        assert (await client.get(f"{base}/healthz")).status_code == 200
        metrics = (await client.get(f"{base}/metrics")).text
        assert "floe_http_admission_rejected_total 1.0" in metrics
        # a credential on /metrics may need the database to check: it queues like the rest
        made_up = {"Authorization": "Bearer floe_abcdefghijkl_" + "x" * 43}
        refused = await client.get(f"{base}/metrics", headers=made_up)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "overloaded"
        release.set()
        assert {r.status_code for r in await asyncio.gather(*held)} == {200}
        assert (await client.get(f"{base}/api/v2/ping")).status_code == 200
