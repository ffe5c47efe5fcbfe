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
    make_settings: Callable[..., Settings], request: pytest.FixtureRequest
) -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A server whose /api/v2/_held answers only once the test sets the event; settings from
    the test's indirect parameter, else MAX_INFLIGHT_REQUESTS=LIMIT."""
    port = free_port()
    settings = make_settings(
        HTTP_PORT=str(port),
        HTTPS_PORT="0",
        BIND_HOST="127.0.0.1",
        METRICS_ENABLED="true",
        **getattr(request, "param", {"MAX_INFLIGHT_REQUESTS": str(LIMIT)}),
    )
    app: Quart = create_app(settings)
    release = asyncio.Event()

    @app.route("/api/v2/_held", methods=["GET", "POST"])
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


@pytest.mark.parametrize("held_server", [{"MAX_INFLIGHT_BODY_BYTES": str(1 << 20)}],
                         indirect=True)
async def test_bodies_held_by_admitted_requests_have_a_byte_budget(
        held_server: tuple[str, asyncio.Event]) -> None:
    """The count bound is sized for many small requests, so the bodies they hold are bounded
    by bytes: a 600 KiB body fits the 1 MiB budget once, not twice; bodiless requests still
    pass, and the budget comes back when the request ends."""
    base, release = held_server
    body = b'"' + b"x" * (600 * 1024) + b'"'
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=10) as client:
        first = asyncio.create_task(client.post(f"{base}/api/v2/_held", content=body,
                                                headers=headers))
        for _ in range(200):
            metrics = (await client.get(f"{base}/metrics")).text
            if f"floe_http_inflight_body_bytes {float(len(body))}" in metrics:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the first body was never held")
        refused = await client.post(f"{base}/api/v2/_held", content=body, headers=headers)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "overloaded"
        assert (await client.get(f"{base}/api/v2/ping")).status_code == 200
        release.set()
        assert (await first).status_code == 200
        metrics = (await client.get(f"{base}/metrics")).text
        assert "floe_http_inflight_body_bytes 0.0" in metrics
        assert "floe_http_admission_rejected_total 1.0" in metrics
