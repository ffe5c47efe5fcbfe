"""`floe serve` (minimal: hypercorn on cleartext HTTP; replaced by the full serving layer)."""

from __future__ import annotations

import asyncio

import uvloop
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from app.config import Settings
from app.factory import create_app

__all__ = ["serve"]


def serve(settings: Settings) -> int:
    config = Config()
    config.bind = [f"{settings.bind_host}:{settings.http_port}"]
    app = create_app(settings)
    uvloop.run(hypercorn_serve(app, config))  # type: ignore[arg-type]
    return 0
