"""Security headers on every response, over HTTP/1.1, h2c, TLS h2 and HTTP/3 (real clients)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator, Mapping

import httpx
import pytest

from tests.integration.serving.rawhttp import read_response
from tests.support.h3client import h3_connect
from tests.support.server import FloeServer

HSTS = "max-age=31536000"

ALWAYS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


@pytest.fixture(scope="module")
def server() -> Iterator[FloeServer]:
    with FloeServer.start(env={"GRPC_ENABLED": "false"}) as srv:
        yield srv


def _csp(value: str) -> dict[str, str]:
    directives = {}
    for part in value.split(";"):
        name, _, rest = part.strip().partition(" ")
        if name:
            directives[name] = rest.strip()
    return directives


def _check(headers: Mapping[str, str], *, tls: bool, docs: bool = False) -> None:
    lower = {k.lower(): v for k, v in headers.items()}
    for name, value in ALWAYS.items():
        assert lower.get(name) == value, (name, lower)
    csp = _csp(lower["content-security-policy"])
    assert csp["frame-ancestors"] == "'none'"
    assert csp["default-src"] == "'none'"
    if docs:
        assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
        assert csp["connect-src"] == "'self'"
        assert "unsafe" not in lower["content-security-policy"]
    else:
        assert "script-src" not in csp
    if tls:
        assert lower.get("strict-transport-security") == HSTS
    else:
        assert "strict-transport-security" not in lower


def _login(server: FloeServer, client: httpx.Client, *, tls: bool = False) -> httpx.Response:
    return client.post(
        server.url("/api/v2/auth/login", tls=tls),
        json={"email": "admin@localhost.local", "password": "admin123"},
    )


@pytest.mark.parametrize("path", ["/api/v2/ping", "/api/v2/nope", "/healthz", "/metrics",
                                  "/api/v1/ping", "/api/v2/openapi.json"])
def test_http11_cleartext(server: FloeServer, path: str) -> None:
    response = httpx.get(server.url(path), timeout=10)
    assert response.http_version == "HTTP/1.1"
    _check(response.headers, tls=False)


def test_token_responses_are_no_store_on_every_protocol(server: FloeServer) -> None:
    with httpx.Client(timeout=10) as client:
        response = _login(server, client)
    assert response.status_code == 200 and "access_token" in response.json()["data"]
    _check(response.headers, tls=False)
    with httpx.Client(http1=False, http2=True, timeout=10) as client:  # h2c
        response = _login(server, client)
    assert response.http_version == "HTTP/2"
    _check(response.headers, tls=False)
    with httpx.Client(http2=True, verify=server.ssl_context(), timeout=10) as client:
        response = _login(server, client, tls=True)
    assert response.http_version == "HTTP/2"
    _check(response.headers, tls=True)


def test_tls_h2_and_h1(server: FloeServer) -> None:
    with httpx.Client(http2=True, verify=server.ssl_context(), timeout=10) as client:
        for path in ("/api/v2/ping", "/api/v2/nope", "/healthz"):
            response = client.get(server.url(path, tls=True))
            assert response.http_version == "HTTP/2"
            _check(response.headers, tls=True)
    with httpx.Client(verify=server.ssl_context(), timeout=10) as client:
        response = client.get(server.url("/api/v2/ping", tls=True))
        assert response.http_version == "HTTP/1.1"
        _check(response.headers, tls=True)


async def test_http3(server: FloeServer) -> None:
    async with h3_connect("127.0.0.1", server.https_port, cafile=server.cert_file) as h3:
        for path in ("/api/v2/ping", "/api/v2/nope", "/api/v2/docs"):
            response = await h3.request("GET", path)
            headers = {k.decode(): v.decode() for k, v in response.headers}
            _check(headers, tls=True, docs=path == "/api/v2/docs")
        login = await h3.request(
            "POST",
            "/api/v2/auth/login",
            headers=[("content-type", "application/json")],
            body=b'{"email":"admin@localhost.local","password":"admin123"}',
        )
    assert login.status == 200
    _check({k.decode(): v.decode() for k, v in login.headers}, tls=True)


def test_refusals_from_the_transport_carry_them(server: FloeServer) -> None:
    # 413 from admission control (declared body too large), before any Quart code
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as sock:
        sock.sendall(b"POST /api/v2/auth/login HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 5000000\r\n\r\n")
        response = read_response(sock)
    assert response.status == 413
    _check(response.headers, tls=False)
    # 400 from the HTTP/1.1 protocol layer (Content-Length with Transfer-Encoding)
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as sock:
        sock.sendall(b"POST /api/v2/ping HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        response = read_response(sock)
    assert response.status == 400
    _check(response.headers, tls=False)


def test_docs_page_has_a_strict_csp_and_no_inline_code(server: FloeServer) -> None:
    with httpx.Client(timeout=10) as client:
        page = client.get(server.url("/api/v2/docs"))
        assert page.status_code == 200
        _check(page.headers, tls=False, docs=True)
        html = page.text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
        assert "<style" not in html and not re.search(r"\sstyle=", html)
        assert not re.search(r"\son[a-z]+=", html), "inline event handler"
        sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
        assert sources and all(s.startswith("/api/v2/") for s in sources), sources
        for source in sources:
            asset = client.get(server.url(source))
            assert asset.status_code == 200, source
            _check(asset.headers, tls=False, docs=True)
        script = client.get(server.url("/api/v2/docs.js"))
        assert script.headers["content-type"].startswith("text/javascript")
        assert "/api/v2/openapi.json" in script.text
        style = client.get(server.url("/api/v2/docs.css"))
        assert style.headers["content-type"].startswith("text/css")


def test_metrics_port_listener(server: FloeServer) -> None:
    response = httpx.get(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
