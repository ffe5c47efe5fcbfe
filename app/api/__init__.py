"""REST API: versioned blueprints, the OpenAPI document and the error envelopes.

Each resource module exposes `bp`, a Blueprint without a prefix. It is registered twice:
under `/api/v2` (current) and `/api/v1` (deprecated: same resources, deprecation headers
added by the serving layer).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from quart import Quart, Response, has_request_context, request
from quart_schema import QuartSchema, RequestSchemaValidationError
from werkzeug.exceptions import HTTPException

from app.api.envelope import ApiError, error_response
from app.api.jsonbody import JsonRequest
from app.api.openapi import FloeOpenAPIProvider, openapi_view
from app.db.errors import DatabaseUnavailable

__all__ = ["VERSIONED_MODULES", "init_app"]

log = logging.getLogger(__name__)

# Resource modules under app/api/, in registration order.
VERSIONED_MODULES: tuple[str, ...] = (
    "system",  # ping
    "stream",  # WebSocket /stream
    "auth",
    "me",
    "users",
    "roles",
    "teams",
    "clients",
    "nodes",
    "stats",
    "flows",
    "rules",
    "audit",
)

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


def _validation_details(error: RequestSchemaValidationError) -> Any:
    inner = error.validation_error
    errors = getattr(inner, "errors", None)
    if callable(errors):
        return [
            {"loc": list(item.get("loc", ())), "msg": item.get("msg"), "type": item.get("type")}
            for item in errors(include_url=False, include_context=False)
        ]
    return str(inner)


async def _non_json_body() -> bool:
    """A body was sent, and it is neither JSON nor a form (querystring errors stay 422)."""
    if request.is_json or request.mimetype in _FORM_TYPES:
        return False
    return bool(await request.get_data(cache=True))  # already read (and bounded) by then


def _register_error_handlers(app: Quart) -> None:
    @app.errorhandler(ApiError)
    async def _api_error(error: ApiError) -> Response:
        return error_response(error.status, error.code, error.message, error.details, error.headers)

    @app.errorhandler(RequestSchemaValidationError)
    async def _schema_error(error: RequestSchemaValidationError) -> Response:
        # quart-schema reads a non-JSON body as "no JSON" and reports a validation error;
        # the client's real mistake is the media type (the routes validated here take JSON).
        if has_request_context() and await _non_json_body():
            return error_response(
                415,
                "unsupported_media_type",
                "Send the body as application/json",
                {"content_type": request.mimetype or None},
            )
        return error_response(
            422, "validation_error", "Request body failed validation", _validation_details(error)
        )

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        headers: dict[str, str] = {}
        valid_methods = getattr(error, "valid_methods", None)
        if status == 405 and valid_methods:
            headers["Allow"] = ", ".join(sorted(valid_methods))
        code = _HTTP_CODES.get(status, "http_error")
        return error_response(status, code, error.description or error.name, headers=headers)

    @app.errorhandler(DatabaseUnavailable)
    async def _database_unavailable(error: DatabaseUnavailable) -> Response:
        # Nothing was committed (a unit of work is all or nothing): the client may retry.
        log.warning("database unavailable: %s", error)
        return error_response(503, "database_unavailable",
                              "The database is unavailable; nothing was changed, retry shortly",
                              headers={"Retry-After": "1"})

    @app.errorhandler(Exception)
    async def _unhandled(error: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Internal server error")


def init_app(app: Quart) -> None:
    # JSON bodies: strict UTF-8, MAX_JSON_DEPTH, 400 envelopes (app/api/jsonbody.py).
    app.request_class = JsonRequest
    QuartSchema(
        app,
        openapi_path="/api/v2/openapi.json",
        redoc_ui_path=None,
        swagger_ui_path=None,
        scalar_ui_path=None,
        convert_casing=False,
        info={"title": "Floe API", "version": "2"},
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
        openapi_provider_class=FloeOpenAPIProvider,  # responses, security: app/api/openapi.py
    )
    # The document is served @public and serialised once: app/api/openapi.py.
    app.view_functions["openapi"] = openapi_view(app)
    for name in VERSIONED_MODULES:
        module = importlib.import_module(f"app.api.{name}")
        bp = module.bp
        app.register_blueprint(bp, url_prefix="/api/v2", name=f"v2_{bp.name}")
        app.register_blueprint(bp, url_prefix="/api/v1", name=f"v1_{bp.name}")
    _register_error_handlers(app)
