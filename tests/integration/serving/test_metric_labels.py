"""Anonymous clients cannot grow /metrics: every label a request influences is bounded."""

from __future__ import annotations

import time

import httpx

from tests.support.server import FloeServer

REQUESTS = 1000
TIME_BUDGET = 60.0  # seconds for each flood, far above the ~1 s it takes


def _metrics(server: FloeServer) -> str:
    return httpx.get(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10).text


def _flood(server: FloeServer, make: list[tuple[str, str]]) -> set[int]:
    statuses = set()
    deadline = time.monotonic() + TIME_BUDGET
    with httpx.Client(timeout=10) as client:
        for method, path in make:
            assert time.monotonic() < deadline, "flood took too long"
            statuses.add(client.request(method, server.url(path)).status_code)
    return statuses


def test_made_up_methods_and_paths_do_not_grow_metrics(floe_server: FloeServer) -> None:
    httpx.get(floe_server.url("/api/v2/ping"))
    httpx.request("BREW", floe_server.url("/api/v2/ping"))  # the "other" series exists now
    before = len(_metrics(floe_server))
    statuses = _flood(
        floe_server, [(f"X{i:04d}", "/api/v2/ping") for i in range(REQUESTS)]
    )  # made-up methods on a real route
    statuses |= _flood(
        floe_server, [("GET", f"/api/v2/nope-{i}") for i in range(REQUESTS)]
    )  # made-up paths
    statuses |= _flood(
        floe_server, [(f"Y{i:04d}", f"/x/{i}") for i in range(REQUESTS)]
    )  # both
    assert statuses <= {404, 405}
    text = _metrics(floe_server)
    growth = len(text) - before
    assert growth < 2_000, f"/metrics grew by {growth} bytes"
    assert "X0001" not in text and "nope-1" not in text
    assert 'method="other",route="<unmatched>",status="405"' in text
    assert 'method="GET",route="<unmatched>",status="404"' in text
