"""Build the Quart application: blueprints, error envelopes, lifecycle.

Layers plug in through their own `init_app(app)`; this module only wires them in order
(transport concerns → API → services → storage) and owns nothing else.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Awaitable, Callable
from types import FunctionType
from typing import Any

from quart import Quart

from app.config import Settings, load_settings
from app.runtime import Runtime

__all__ = ["FloeQuart", "create_app"]


class FloeQuart(Quart):
    """Quart whose `ensure_async` remembers which functions are coroutine functions.

    Quart asks `inspect.iscoroutinefunction` about every hook and view on every request
    (~3 % of a request's CPU in py-spy under wrk); a function's nature does not change. The
    set is weak, so functions made per call (closures, background tasks) are not kept alive.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._coroutine_functions: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()

    def ensure_async(self, func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        known = self._coroutine_functions
        if type(func) is FunctionType:
            if func in known:
                return func  # type: ignore[no-any-return]
            if inspect.iscoroutinefunction(func):
                known.add(func)
                return func  # type: ignore[no-any-return]
        return super().ensure_async(func)


def create_app(settings: Settings | None = None) -> Quart:
    settings = settings or load_settings()
    app = FloeQuart("floe", static_folder=None)
    app.extensions["floe"] = Runtime(settings=settings)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["QUART_SCHEMA_CONVERT_CASING"] = False

    # Imported here so that `import app.factory` stays cheap for the CLI.
    from app import api, cluster, db, export, identity, ingest, observer, serving

    serving.init_app(app)  # request ids, admission control, metrics, probes, v1 headers
    db.init_app(app)  # storage: connects, creates schema, readiness
    identity.init_app(app)  # authenticator, sessions, default admin
    ingest.init_app(app)  # dataplane uplink, telemetry aggregate
    observer.init_app(app)  # flow events for streaming consumers (gRPC Observer)
    export.init_app(app)  # IPFIX export of ended flows (FLOE_IPFIX_COLLECTORS)
    cluster.init_app(app)  # live state shared through Redis (REDIS_URL): the relay
    api.init_app(app)  # blueprints (v1 + v2), OpenAPI, error envelopes
    from app.serving import webui

    webui.init_app(app)  # the dashboard (webui/dist): index.html for client routes, assets
    return app
