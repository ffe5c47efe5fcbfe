"""Security headers for every HTTP response, chosen by path and by whether TLS carried it.

Every response gets:

* `X-Content-Type-Options: nosniff` — a JSON error quoting client input is never sniffed as
  HTML or script;
* `X-Frame-Options: DENY` and CSP `frame-ancestors 'none'` — nothing is framed (clickjacking);
* `Referrer-Policy: no-referrer` — URLs (which may carry `?access_token=` on the stream) do
  not leak to other sites;
* `Cache-Control: no-store` — logins, refreshes and new API keys carry secrets, and every API
  answer carries someone's data: no browser or proxy keeps a copy;
* `Content-Security-Policy` from `content_security_policy(path)`: `default-src 'none'` for
  the API (JSON loads nothing); the docs page may load its own script, style and the OpenAPI
  document, and nothing inline. The dashboard (webui/, not built yet) gets its own policy here;
* on TLS (HTTPS_PORT over TCP or QUIC), `Strict-Transport-Security: max-age=HSTS_MAX_AGE`.
  Browsers ignore it on a certificate they do not trust (the development one) and on IP
  addresses; with a trusted certificate for a name, they then refuse plain `http://` to that
  name on every port, HTTP_PORT included — intended (HSTS_MAX_AGE=0 leaves it out).

The lists are built once per (policy, TLS) pair and appended to the ASGI
`http.response.start` message as bytes, so the per-response cost is one list concatenation.
"""

from __future__ import annotations

from typing import Any

from app.serving.webui import CSP as WEBUI_CSP

__all__ = [
    "API_CSP",
    "DOCS_CSP",
    "DOCS_PREFIX",
    "SecurityHeaders",
    "content_security_policy",
]

API_CSP = "default-src 'none'; frame-ancestors 'none'"  # JSON loads nothing, is never framed
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
DOCS_PREFIX = "/api/v2/docs"  # the page and its assets (docs.js, docs.css)
# Paths of the API and the probes; every other path belongs to the dashboard
# (app/serving/webui.py), which sets its own caching (hashed assets are cached for a year).
_API_PREFIXES = ("/api/", "/healthz", "/readyz", "/metrics")

_COMMON: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_NO_STORE = ((b"cache-control", b"no-store"),)  # API answers may carry tokens and secrets


def content_security_policy(path: str) -> str:
    """The CSP for a response to `path`."""
    if path.startswith(DOCS_PREFIX):
        return DOCS_CSP
    if path.startswith(_API_PREFIXES):
        return API_CSP
    return WEBUI_CSP


class SecurityHeaders:
    """Pre-encoded header lists, one per (policy, TLS) pair."""

    __slots__ = ("_lists",)

    def __init__(self, hsts_max_age: int) -> None:
        hsts = [(b"strict-transport-security", f"max-age={hsts_max_age}".encode())]
        if hsts_max_age <= 0:
            hsts = []
        self._lists: dict[tuple[str, bool], list[tuple[bytes, bytes]]] = {}
        for csp in (API_CSP, DOCS_CSP, WEBUI_CSP):
            base = [*_COMMON, (b"content-security-policy", csp.encode())]
            if csp != WEBUI_CSP:
                base += _NO_STORE
            self._lists[(csp, False)] = base
            self._lists[(csp, True)] = base + hsts

    def for_request(self, path: str, tls: bool) -> list[tuple[bytes, bytes]]:
        return self._lists[(content_security_policy(path), tls)]

    def send(self, send: Any, path: str, tls: bool) -> Any:
        """`send` with these headers added to the response start (an ASGI send wrapper).

        A closure, not an object: Quart wraps `send` with `functools.wraps`, which on an
        instance without `__name__`/`__qualname__` raises and catches three AttributeErrors
        per request (~3 µs measured)."""
        extra = self._lists[(content_security_policy(path), tls)]

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], *extra]
            await send(message)

        return send_with_headers
