"""`GET /ping`: the cheapest authenticated-free round trip, used by benchmarks and probes."""

from __future__ import annotations

from quart import Blueprint, Response

from app.api.access import public
from app.api.envelope import ok

__all__ = ["bp"]

bp = Blueprint("system", __name__)


@bp.get("/ping")
@public
async def ping() -> Response:
    return ok({"pong": True})
