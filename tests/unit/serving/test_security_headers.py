"""The security header policy: per path, per TLS, and HSTS_MAX_AGE."""

from __future__ import annotations

from app.serving.headers import API_CSP, DOCS_CSP, SecurityHeaders, content_security_policy


def test_csp_is_a_function_of_the_path() -> None:
    assert content_security_policy("/api/v2/docs") == DOCS_CSP
    assert content_security_policy("/api/v2/docs.js") == DOCS_CSP
    assert content_security_policy("/api/v2/users") == API_CSP
    assert content_security_policy("/healthz") == API_CSP
    assert "'unsafe-inline'" not in DOCS_CSP and "frame-ancestors 'none'" in DOCS_CSP


def test_hsts_only_on_tls_and_off_at_zero() -> None:
    names = lambda items: {name for name, _ in items}  # noqa: E731
    on = SecurityHeaders(31_536_000)
    assert b"strict-transport-security" in names(on.for_request("/api/v2/ping", True))
    assert b"strict-transport-security" not in names(on.for_request("/api/v2/ping", False))
    off = SecurityHeaders(0)
    assert b"strict-transport-security" not in names(off.for_request("/api/v2/ping", True))
    assert (b"cache-control", b"no-store") in off.for_request("/api/v2/ping", True)
