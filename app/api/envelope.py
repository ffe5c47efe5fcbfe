"""The standard's response envelopes, in one place.

v2: `{"status": "success", "data": …, "meta": {"version": 2, "timestamp": …, "request_id": …}}`
errors: `{"status": "error", "error": {"code", "message", "details"?}, "meta": …}`.
`/api/v1/…` answers the same shapes with `meta.version == 1` (plus deprecation headers).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson
from quart import Response, has_request_context, request

from app.logging import correlation_id

__all__ = [
    "ApiError",
    "api_version",
    "error_body",
    "error_response",
    "json_response",
    "ok",
    "timestamp",
]


class ApiError(Exception):
    """Raise from any route or service to answer with the error envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = dict(headers or {})


def api_version() -> int:
    if has_request_context() and request.path.startswith("/api/v1/"):
        return 1
    return 2


_second: list[Any] = [-1, ""]  # [whole second, its "YYYY-mm-ddTHH:MM:SS" text]


def timestamp() -> str:
    """UTC ISO 8601 with milliseconds; strftime runs once per second, not per response."""
    now = time.time()
    whole = int(now)
    cached = _second
    if cached[0] != whole:
        cached[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        cached[0] = whole
    return f"{cached[1]}.{int(now * 1000) % 1000:03d}Z"


def _meta(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "version": api_version(),
        "timestamp": timestamp(),
        "request_id": correlation_id.get(),
    }
    if extra:
        meta.update(extra)
    return meta


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """Serialise with orjson once; Quart's own jsonify is several times slower."""
    response = Response(
        orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        mimetype="application/json",
    )
    if headers:
        for key, value in headers.items():
            response.headers[key] = value
    return response


def ok(
    data: Any = None,
    status: int = 200,
    meta: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return json_response({"status": "success", "data": data, "meta": _meta(meta)}, status, headers)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"status": "error", "error": error, "meta": _meta()}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return json_response(error_body(code, message, details), status, headers)
