"""Transport-side concerns of the Quart app: request ids, v1 deprecation headers, probes,
metrics, admission control, the broadcast hub and its heartbeat.

`init_app` runs first in `create_app`, so everything here applies to every route.
The process-level parts (hypercorn listeners, gRPC server, signals) live in `run.py`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from quart import Quart, Response, request

from app.hub import Hub, HubCollector, run_heartbeat
from app.logging import correlation_id
from app.runtime import get_runtime
from app.serving.admission import AdmissionMiddleware
from app.serving.fairness import LoopFairness
from app.serving.metrics import ServingMetrics
from app.tasks import cancel_and_wait

__all__ = ["V1_SUNSET", "init_app"]

V1_SUNSET = "Tue, 01 Jun 2027 00:00:00 GMT"
_UNMATCHED = "<unmatched>"


def init_app(app: Quart) -> None:
    runtime = get_runtime(app)
    settings = runtime.settings
    metrics = ServingMetrics(others=runtime.collectors)  # the layers' list, read per scrape
    hub = Hub(queue_size=settings.ws_queue_size, max_subscribers=settings.ws_max_connections,
              max_per_owner=settings.ws_max_per_principal)
    metrics.registry.register(HubCollector(hub))
    metrics.counters.ws_clients = lambda: hub.subscriber_count
    metrics.counters.ws_dropped = lambda: hub.dropped_total
    runtime.components["serving_metrics"] = metrics

    runtime.components["hub"] = hub
    def stream_activity() -> float:  # the ingest layer registers it (components["stream_activity"])
        probe = runtime.components.get("stream_activity")
        return float(probe()) if probe is not None else 0.0

    fairness = LoopFairness(settings.max_inflight_requests, stream_activity)
    metrics.counters.fairness = fairness
    app.asgi_app = AdmissionMiddleware(app.asgi_app, settings, metrics.counters, fairness)  # type: ignore[method-assign,assignment]
    observe = metrics.observe
    perf_counter = time.perf_counter

    @app.after_request
    async def _headers(response: Response) -> Response:
        req = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
        headers = response.headers
        headers.add("X-Request-ID", correlation_id.get())  # no route sets it: skip set()'s scan
        path: str = req.path
        if path.startswith("/api/v1/"):
            headers["Deprecation"] = "true"
            headers["Sunset"] = V1_SUNSET
            headers["Link"] = f'</api/v2/{path[8:]}>; rel="successor-version"'
            headers["Warning"] = '299 - "API v1 is deprecated; use /api/v2"'
        rule = req.url_rule
        t0 = req.scope.get("floe.t0")
        if isinstance(t0, float):
            observe(
                req.method,
                rule.rule if rule is not None else _UNMATCHED,
                response.status_code,
                perf_counter() - t0,
            )
        return response

    heartbeat: list[asyncio.Task[None]] = []

    @app.before_serving
    async def _start_heartbeat() -> None:
        _response_fast_path(app)
        heartbeat.append(asyncio.create_task(run_heartbeat(hub, settings.ws_heartbeat_interval)))
        fairness.start()

    @app.after_serving
    async def _stop_heartbeat() -> None:
        await fairness.stop()
        hub.close_all(1001)
        await cancel_and_wait(heartbeat)
        heartbeat.clear()

    from app.serving import apidocs, probes

    app.register_blueprint(probes.bp)
    app.register_blueprint(apidocs.bp)


def _response_fast_path(app: Quart) -> None:
    """Hand a ready `Response` straight through `make_response`.

    Every Floe route returns a Response (the envelope); quart-schema's wrapper (installed by
    the API layer after this one) still converts it twice as a possible model (~9 µs per
    request). Wrapped here, once every layer has installed its hooks.
    """
    inner = app.make_response
    if getattr(inner, "_floe_fast", False):
        return
    response_class = app.response_class

    async def make_response(rv: Any) -> Any:
        if type(rv) is response_class:
            return rv
        return await inner(rv)

    make_response._floe_fast = True  # type: ignore[attr-defined]
    app.make_response = make_response  # type: ignore[method-assign,assignment]
