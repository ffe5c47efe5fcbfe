"""ASGI admission control: a bound on in-flight REST requests, checked before Quart runs.

Past MAX_INFLIGHT_REQUESTS a request is answered at once with 503, `Retry-After` and the
error envelope, so a flood costs a few microseconds per refused request instead of a
full Quart dispatch, and the loop keeps time for streams (WebSocket heartbeats, gRPC).
The bound is sized for the concurrency Floe serves (2,048: 1,000 HTTP/3 connections each
with a request outstanding must not meet 503s — measured in docs/benchmarks.md); what
admitted requests may wait for is the fairness gate below, which costs no loop time.
Because admitted requests hold their bodies, the bytes they hold together are bounded too
(MAX_INFLIGHT_BODY_BYTES, 256 MiB): past it, 503 as for the count.
Probes and metrics are exempt (orchestrators must see the process even when it is busy);
WebSocket streams are not counted. Requests over a protocol version switched off by
HTTP1_ENABLED / HTTP2_ENABLED / HTTP3_ENABLED are refused with 505.

Admitted requests then run as many at a time as keep the loop's turns short
(`app.serving.fairness`), so a REST flood cannot starve the streams sharing the loop.

A request takes its slot only once its whole body is here. Quart reads a body inside the
request, with a 60 s timeout, so 260 connections sending a header and one byte of body held
every slot and turned all REST calls into 503s. The body is read here first and handed to
Quart as one message:

* every pause between chunks is bounded by BODY_IDLE_TIMEOUT and the whole body by
  BODY_TIMEOUT — past either, 408 `request_timeout`;
* a declared or received body over MAX_BODY_BYTES is a 413 as soon as it is known;
* at most MAX_UPLOADING_REQUESTS bodies are arriving at once (so at most that many times
  MAX_BODY_BYTES is buffered); past it, 503 `overloaded`.

Each refusal is counted in `floe_http_bodies_refused_total{reason}`. On HTTP/1.1 the
connection closes after such an answer (the unread body makes it unusable).

Every HTTP answer, the app's and these refusals alike, leaves through a `send` that adds the
security headers (`app.serving.headers`).

The common case costs no timer: hypercorn hands the app `app_queue.get` as `receive`, and for
a request without a body (or with a small one in the same packet) the complete body message
is already queued when the app starts, so it is taken with `get_nowait()`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from app.api.envelope import error_body
from app.config import Settings
from app.logging import correlation_id, new_correlation_id
from app.serving.fairness import LoopFairness
from app.serving.headers import SecurityHeaders
from app.serving.metrics import ServingCounters
from app.serving.wsframes import attach as attach_frame_sender
from app.types import WS_FRAMES

__all__ = ["EXEMPT_PATHS", "AdmissionMiddleware", "BodyReplay"]

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


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return -1


class BodyReplay:
    """The `receive` Quart gets: the whole body as one message, then the server's own
    `receive` (which delivers `http.disconnect`)."""

    __slots__ = ("_message", "_receive")

    def __init__(self, message: dict[str, Any], receive: Any) -> None:
        self._message: dict[str, Any] | None = message
        self._receive = receive

    async def __call__(self) -> Any:
        message = self._message
        if message is not None:
            self._message = None
            return message
        return await self._receive()


class AdmissionMiddleware:
    """Wraps `app.asgi_app`; counts in-flight requests in `counters.inflight`."""

    def __init__(self, inner: ASGIApp, settings: Settings, counters: ServingCounters,
                 fairness: LoopFairness | None = None) -> None:
        self.inner = inner
        self.fairness = fairness
        self.limit = settings.max_inflight_requests
        self.counters = counters
        self.max_body = settings.max_body_bytes
        self.body_budget = settings.max_inflight_body_bytes
        self.body_idle_timeout = settings.body_idle_timeout
        self.body_timeout = settings.body_timeout
        self.max_uploading = settings.max_uploading_requests
        self.security = SecurityHeaders(settings.hsts_max_age)
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
        if kind == "websocket":
            attach_frame_sender(scope, send)
            try:
                await self.inner(scope, receive, send)
            finally:  # the sender holds hypercorn's stream, which holds the scope: no cycle left
                scope.pop(WS_FRAMES, None)
            return
        if kind != "http":
            await self.inner(scope, receive, send)
            return
        scope["floe.t0"] = time.perf_counter()
        path = scope["path"]
        send = self.security.send(send, path, scope["scheme"] == "https")  # every answer
        if scope.get("http_version") in self.disabled_versions:
            await self._refuse(
                send, 505, "http_version_disabled", "This HTTP version is disabled here"
            )
            return
        if path in EXEMPT_PATHS and not (path == "/metrics" and _credentialed(scope)):
            await self.inner(scope, receive, send)
            return
        counters = self.counters
        if counters.inflight >= self.limit:
            await self._overloaded(send)
            return
        message = await self._read_body(scope, receive, send)
        if message is None:  # answered (408/413/503) or the client went away
            return
        held = len(message.get("body", b""))
        if (counters.inflight >= self.limit  # an upload may have taken a while: check again
                or counters.inflight_body_bytes + held > self.body_budget):
            await self._overloaded(send)
            return
        counters.inflight += 1
        counters.inflight_body_bytes += held
        fairness = self.fairness
        try:
            if fairness is None:
                await self.inner(scope, BodyReplay(message, receive), send)
                return
            await fairness.acquire()  # its turn: see app/serving/fairness.py
            try:
                await self.inner(scope, BodyReplay(message, receive), send)
            finally:
                fairness.release()
        finally:
            counters.inflight -= 1
            counters.inflight_body_bytes -= held

    async def _read_body(
        self, scope: dict[str, Any], receive: Any, send: Any
    ) -> dict[str, Any] | None:
        """The complete body as one `http.request` message, read under the bounds above;
        None once the request has been answered here or the client has gone.

        Messages already in hypercorn's queue are taken without waiting; only when the body
        is not all here does the request count as uploading and each wait get a timer."""
        queue = getattr(receive, "__self__", None)  # hypercorn: `receive` is `app_queue.get`
        if type(queue) is not asyncio.Queue:
            queue = None
        counters = self.counters
        chunks: list[bytes] = []
        size = 0
        taken = 0
        deadline = -1.0  # set when the upload starts
        try:
            while True:
                message: dict[str, Any]
                if queue is not None and not queue.empty():
                    message = queue.get_nowait()
                else:
                    loop = asyncio.get_running_loop()
                    if deadline < 0:
                        if not await self._start_upload(scope, send):
                            return None
                        deadline = loop.time() + self.body_timeout
                    try:
                        async with asyncio.timeout_at(
                            min(loop.time() + self.body_idle_timeout, deadline)
                        ):
                            message = await receive()
                    except TimeoutError:
                        counters.body_timeouts += 1
                        await self._refuse(
                            send, 408, "request_timeout",
                            "The request body stalled or took too long; send it in one go",
                        )
                        return None
                if message["type"] != "http.request":
                    return None  # http.disconnect: nobody to answer
                taken += 1
                chunk = message.get("body", b"")
                if chunk:
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > self.max_body:
                        counters.body_too_large += 1
                        await self._too_large(send)
                        return None
                if not message.get("more_body", False):
                    if taken == 1:  # the whole body in one message (every GET): as it is
                        return message
                    return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        finally:
            if deadline >= 0:
                counters.uploading -= 1

    async def _start_upload(self, scope: dict[str, Any], send: Any) -> bool:
        """Count a request whose body is still to come, or refuse it (413 / 503)."""
        counters = self.counters
        if _declared_length(scope["headers"]) > self.max_body:
            counters.body_too_large += 1
            await self._too_large(send)
            return False
        if counters.uploading >= self.max_uploading:
            counters.uploads_full += 1
            await self._refuse(
                send, 503, "overloaded", "Too many request bodies arriving; retry shortly",
                retry_after=True,
            )
            return False
        counters.uploading += 1
        return True

    async def _overloaded(self, send: Any) -> None:
        self.counters.admission_rejected += 1
        await self._refuse(
            send,
            503,
            "overloaded",
            "Too many requests in flight; retry shortly",
            retry_after=True,
        )

    async def _too_large(self, send: Any) -> None:
        await self._refuse(
            send, 413, "payload_too_large", f"The body exceeds {self.max_body} bytes"
        )

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
