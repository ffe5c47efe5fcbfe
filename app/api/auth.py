"""/auth resources (placeholder blueprint until its layer lands)."""

from __future__ import annotations

from quart import Blueprint

__all__ = ["bp"]

bp = Blueprint("auth", __name__)
