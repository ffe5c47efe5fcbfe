"""`/healthz` (liveness), `/readyz` (database + dataplane), `/metrics` (Prometheus)."""

from __future__ import annotations

from quart import Blueprint, Response

from app.api.access import public
from app.api.envelope import json_response
from app.runtime import get_runtime

__all__ = ["bp"]

bp = Blueprint("probes", __name__)


@bp.get("/healthz")
@public
async def healthz() -> Response:
    return json_response({"status": "ok"})


@bp.get("/readyz")
@public
async def readyz() -> Response:
    checks: dict[str, object] = {}
    ready = True
    for name, check in get_runtime().readiness.items():
        ok, detail = await check()
        checks[name] = {"ok": ok, "detail": detail}
        ready = ready and ok
    return json_response({"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503)
