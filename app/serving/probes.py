"""`/healthz` (liveness), `/readyz` (database + dataplane), `/metrics` (Prometheus; the
dataplanes' series only for a caller with stats:read)."""

from __future__ import annotations

import asyncio

from quart import Blueprint, Response

from app.api.access import current_principal, public
from app.api.envelope import ApiError, json_response
from app.runtime import get_runtime
from app.serving.metrics import CONTENT_TYPE, ServingMetrics

__all__ = ["READY_CHECK_TIMEOUT", "bp"]

bp = Blueprint("probes", __name__)

READY_CHECK_TIMEOUT = 2.0


@bp.get("/healthz")
@public
async def healthz() -> Response:
    """Liveness; with `floe serve --instances N` also which instance answered (0..N-1)."""
    instance = get_runtime().components.get("instance")
    if instance is None:
        return json_response({"status": "ok"})
    return json_response({"status": "ok", "instance": instance})


@bp.get("/readyz")
@public
async def readyz() -> Response:
    checks: dict[str, object] = {}
    ready = True
    for name, check in get_runtime().readiness.items():
        try:
            ok, detail = await asyncio.wait_for(check(), READY_CHECK_TIMEOUT)
        except TimeoutError:
            ok, detail = False, "timed out"
        checks[name] = {"ok": ok, "detail": detail}
        ready = ready and ok
    return json_response(
        {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503
    )


@bp.get("/metrics")
@public
async def metrics() -> Response:
    runtime = get_runtime()
    if not runtime.settings.metrics_enabled:
        raise ApiError(404, "not_found", "Metrics are disabled (METRICS_ENABLED=false)")
    serving: ServingMetrics = runtime.components["serving_metrics"]
    # The dataplanes' series (every node's traffic) need a credential with stats:read on
    # the app's port; METRICS_PORT, meant for the monitoring network, serves them all.
    try:
        principal = await current_principal()  # a bad bearer is a 401, never a fallback
    except ApiError as error:
        if error.status < 500:
            raise
        principal = None  # authentication needs the database, which is out: serving only
    body = serving.render() if principal is not None and principal.has("stats:read") \
        else serving.render_serving()
    return Response(body, status=200, content_type=CONTENT_TYPE)
