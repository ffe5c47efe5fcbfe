"""`GET /ping`: the cheapest authenticated-free round trip, used by benchmarks and probes."""

from __future__ import annotations

from pydantic import BaseModel
from quart import Blueprint, Response
from quart_schema import document_response

from app.api.access import public
from app.api.envelope import ok

__all__ = ["bp"]

bp = Blueprint("system", __name__)


class Pong(BaseModel):
    pong: bool


@bp.get("/ping")
@document_response(Pong)
@public
async def ping() -> Response:
    return ok({"pong": True})
