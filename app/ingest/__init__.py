"""Placeholder until this layer lands: attaches nothing."""

from __future__ import annotations

from quart import Quart

__all__ = ["init_app"]


def init_app(app: Quart) -> None:
    return None
