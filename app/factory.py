"""Build the Quart application: blueprints, error envelopes, lifecycle.

Layers plug in through their own `init_app(app)`; this module only wires them in order
(transport concerns → API → services → storage) and owns nothing else.
"""

from __future__ import annotations

from quart import Quart

from app.config import Settings, load_settings
from app.runtime import Runtime

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> Quart:
    settings = settings or load_settings()
    app = Quart("floe", static_folder=None)
    app.extensions["floe"] = Runtime(settings=settings)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["QUART_SCHEMA_CONVERT_CASING"] = False

    # Imported here so that `import app.factory` stays cheap for the CLI.
    from app import api, db, identity, ingest, serving

    serving.init_app(app)  # request ids, admission control, metrics, probes, v1 headers
    db.init_app(app)  # storage: connects, creates schema, readiness
    identity.init_app(app)  # authenticator, sessions, default admin
    ingest.init_app(app)  # dataplane uplink, telemetry aggregate
    api.init_app(app)  # blueprints (v1 + v2), OpenAPI, error envelopes
    return app
