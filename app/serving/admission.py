"""ASGI admission control: a bound on in-flight REST requests, checked before Quart runs.

Past MAX_INFLIGHT_REQUESTS a request is answered at once with 503, `Retry-After` and the
error envelope, so a flood costs a few microseconds per refused request instead of a
full Quart dispatch, and the loop keeps time for streams (WebSocket heartbeats, gRPC).
Probes and metrics are exempt (orchestrators must see the process even when it is busy);
WebSocket streams are not counted. Requests over a protocol version switched off by
HTTP1_ENABLED / HTTP2_ENABLED / HTTP3_ENABLED are refused with 505.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from app.api.envelope import error_body
from app.config import Settings
from app.logging import correlation_id, new_correlation_id
from app.serving.metrics import ServingCounters

__all__ = ["EXEMPT_PATHS", "AdmissionMiddleware"]

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

ASGIApp = Any


def _credentialed(scope: dict[str, Any]) -> bool:
    """A request carrying a credential: on /metrics (the one exempt path that authenticates)
    checking it may need the database, so it queues like any other request: a flood of
    made-up keys must not bypass the bound."""
    return any(name in (b"authorization", b"cookie") for name, _ in scope.get("headers", ()))


def _request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """`X-Request-ID` from the client when printable (≤ 64 chars), else a fresh 16-hex id."""
    for name, value in headers:
        if name == b"x-request-id":
            text = value[:64].decode("latin-1")
            if text and text.isprintable():
                return text
            break
    return new_correlation_id()


class AdmissionMiddleware:
    """Wraps `app.asgi_app`; counts in-flight requests in `counters.inflight`."""

    def __init__(self, inner: ASGIApp, settings: Settings, counters: ServingCounters) -> None:
        self.inner = inner
        self.limit = settings.max_inflight_requests
        self.counters = counters
        disabled = set()
        if not settings.http1_enabled:
            disabled.update({"1.0", "1.1"})
        if not settings.http2_enabled:
            disabled.add("2")
        if not settings.http3_enabled:
            disabled.add("3")
        self.disabled_versions = frozenset(disabled)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.inner(scope, receive, send)
            return
        # The correlation id is set here (not in a Quart hook): Quart runs the request in a
        # task created from this context, so the value is visible to handlers and logs.
        correlation_id.set(_request_id(scope["headers"]))
        if kind != "http":
            await self.inner(scope, receive, send)
            return
        scope["floe.t0"] = time.perf_counter()
        if scope.get("http_version") in self.disabled_versions:
            await self._refuse(
                send, 505, "http_version_disabled", "This HTTP version is disabled here"
            )
            return
        path = scope["path"]
        if path in EXEMPT_PATHS and not (path == "/metrics" and _credentialed(scope)):
            await self.inner(scope, receive, send)
            return
        counters = self.counters
        if counters.inflight >= self.limit:
            counters.admission_rejected += 1
            await self._refuse(
                send,
                503,
                "overloaded",
                "Too many requests in flight; retry shortly",
                retry_after=True,
            )
            return
        counters.inflight += 1
        try:
            await self.inner(scope, receive, send)
        finally:
            counters.inflight -= 1

    async def _refuse(
        self, send: Any, status: int, code: str, message: str, *, retry_after: bool = False
    ) -> None:
        request_id = correlation_id.get()
        body = orjson.dumps(error_body(code, message))  # outside Quart: meta.version 2
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
        ]
        if retry_after:
            headers.append((b"retry-after", b"1"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
