"""`GET /stats/summary`: per-interface packets, bytes, rates, drops and loss, plus totals."""

from __future__ import annotations

from quart import Blueprint, Response

from app.api.access import require_scope, visible_nodes
from app.api.envelope import ok
from app.ingest import get_state

__all__ = ["bp"]

bp = Blueprint("stats", __name__)


@bp.get("/stats/summary")
@require_scope("stats:read", per_node=True)
async def summary() -> Response:
    nodes = await visible_nodes("stats:read")
    return ok(get_state().view(nodes))
