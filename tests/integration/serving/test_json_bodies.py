"""Hostile JSON bodies against a real server: every one is a 400 in the envelope, never a 500,
and nothing lands in the log as a traceback (the public /auth/login and authenticated routes)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from app.api.jsonbody import MAX_JSON_DEPTH
from tests.support.server import FloeServer

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server() -> Iterator[FloeServer]:
    with FloeServer.start(env={"GRPC_ENABLED": "false", "HTTP3_ENABLED": "false"}) as srv:
        yield srv


@pytest.fixture(scope="module")
def token(server: FloeServer) -> str:
    response = httpx.post(
        server.url("/api/v2/auth/login"),
        json={"email": "admin@localhost.local", "password": "admin123"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    value: str = response.json()["data"]["access_token"]
    return value


def _nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def _in_object(levels: int) -> bytes:
    """`{"email": [[…]]}`: `levels` containers deep in all, the object included."""
    return b'{"email":' + _nested(levels - 1) + b"}"


HOSTILE = {
    "nested-500": (_nested(500), "invalid_json"),
    "nested-5000": (_nested(5000), "invalid_json"),  # past orjson's own limit too
    "nested-in-object": (_in_object(MAX_JSON_DEPTH + 1), "invalid_json"),
    "invalid-utf8": (b'{"email":"\xff\xfe@x","password":"abcdefgh"}', "invalid_encoding"),
    "lone-surrogate": (b'{"email":"\xed\xa0\x80","password":"abcdefgh"}', "invalid_encoding"),
    "truncated": (b'{"email":', "invalid_json"),
    "nan": (b'{"email":NaN}', "invalid_json"),
    "empty": (b"", "invalid_json"),
}

ROUTES = [
    ("POST", "/api/v2/auth/login", False),
    ("POST", "/api/v1/auth/login", False),
    ("PATCH", "/api/v2/me/profile", True),
    ("PUT", "/api/v2/rules", True),
]


def _assert_no_tracebacks(server: FloeServer, since: int) -> None:
    """Nothing since offset `since` of the server's log is a traceback or a huge line."""
    log = server.output()[since:]
    assert "Traceback" not in log
    assert "RecursionError" not in log and "UnicodeDecodeError" not in log
    assert max((len(line) for line in log.splitlines()), default=0) < 4096


@pytest.mark.parametrize(("method", "path", "authenticated"), ROUTES)
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_json_is_400_in_the_envelope(
    server: FloeServer, token: str, method: str, path: str, authenticated: bool, case: str
) -> None:
    body, code = HOSTILE[case]
    headers = dict(JSON)
    if authenticated:
        headers["Authorization"] = f"Bearer {token}"
    since = len(server.output())
    response = httpx.request(method, server.url(path), content=body, headers=headers, timeout=10)
    assert response.status_code == 400, response.text
    envelope = response.json()
    assert envelope["status"] == "error"
    assert envelope["error"]["code"] == code
    assert envelope["meta"]["request_id"] == response.headers["x-request-id"]
    _assert_no_tracebacks(server, since)


def test_depth_limit_is_exact(server: FloeServer) -> None:
    """At MAX_JSON_DEPTH the body is parsed (and fails validation: 422); one more is 400."""
    url = server.url("/api/v2/auth/login")
    since = len(server.output())
    at_limit = httpx.post(url, content=_in_object(MAX_JSON_DEPTH), headers=JSON, timeout=10)
    assert at_limit.status_code == 422, at_limit.text
    over = httpx.post(url, content=_in_object(MAX_JSON_DEPTH + 1), headers=JSON, timeout=10)
    assert over.status_code == 400
    assert over.json()["error"]["details"] == {"max_depth": MAX_JSON_DEPTH}
    wide = b'{"email":[' + b",".join([b"[[1]]"] * 20_000) + b"]}"  # many brackets, shallow
    assert httpx.post(url, content=wide, headers=JSON, timeout=10).status_code == 422
    _assert_no_tracebacks(server, since)


def test_good_json_still_works(server: FloeServer, token: str) -> None:
    response = httpx.patch(
        server.url("/api/v2/me/profile"),
        json={"display_name": "Admin"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def test_chunked_hostile_body(server: FloeServer) -> None:
    """The same refusals when the body arrives in pieces (no Content-Length)."""

    def pieces() -> Iterator[bytes]:
        body = _nested(800)
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    since = len(server.output())
    response = httpx.post(
        server.url("/api/v2/auth/login"), content=pieces(), headers=JSON, timeout=10
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    _assert_no_tracebacks(server, since)
