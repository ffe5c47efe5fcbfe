"""The dashboard served by a real `floe serve`: index.html for client routes, hashed assets
cached for a year, a CSP with no inline scripts, and the API/probes untouched — over
HTTP/1.1, HTTP/2 (TLS) and HTTP/3. A stand-in build keeps this independent of npm."""

from __future__ import annotations

import asyncio
import gzip
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.h3client import h3_connect
from tests.support.server import PYTHON, REPO_ROOT, FloeServer

ASSET = "assets/index-Ab12Cd34.js"
SCRIPT = "console.log('floe dashboard');\n" * 100  # > 512 bytes: served gzip-compressed
INDEX = (
    '<!doctype html><html><head><script type="module" src="/' + ASSET + '"></script>'
    '</head><body><div id="root"></div></body></html>'
)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("webui")
    build = root / "dist"
    (build / "assets").mkdir(parents=True)
    (build / "index.html").write_text(INDEX)
    (build / ASSET).write_text(SCRIPT)
    (build / "favicon.ico").write_bytes(b"\0\0\1\0" + b"\0" * 60)
    (root / "secret.txt").write_text("outside the build")
    return build


@pytest.fixture(scope="module")
def server(dist: Path) -> Iterator[FloeServer]:
    with FloeServer.start(env={"FLOE_WEBUI_DIR": str(dist), "FLOE_ENV": "development"}) as srv:
        yield srv


def _raw_get(port: int, target: str) -> str:
    """A request line sent as is (no client-side normalisation of `..` or `%2f`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.decode(errors="replace")


def test_index_and_client_routes(server: FloeServer) -> None:
    for path in ("/", "/dashboard", "/admin/users", "/flows/some/deep/link", "/login?next=/x"):
        response = httpx.get(server.url(path))
        assert response.status_code == 200, path
        assert response.text == INDEX
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["content-type"].startswith("text/html")
        policies = response.headers.get_list("content-security-policy")
        assert len(policies) == 1, policies  # one policy: a second (the API's) would win
        csp = policies[0]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert response.headers.get_list("cache-control") == ["no-cache"]


def test_assets_are_hashed_cached_compressed_and_conditional(server: FloeServer) -> None:
    response = httpx.get(server.url("/" + ASSET), headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers.get_list("cache-control") == ["public, max-age=31536000, immutable"]
    assert len(response.headers.get_list("content-security-policy")) == 1
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) < len(SCRIPT) // 4
    assert response.text == SCRIPT  # httpx decodes
    plain = httpx.get(server.url("/" + ASSET), headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.text == SCRIPT
    again = httpx.get(server.url("/" + ASSET), headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    icon = httpx.get(server.url("/favicon.ico"))
    assert icon.status_code == 200 and icon.headers["cache-control"] == "no-cache"


def test_missing_files_are_404_not_index(server: FloeServer) -> None:
    for path in ("/assets/index-gone.js", "/missing.png"):
        response = httpx.get(server.url(path))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_api_and_probes_keep_their_answers(server: FloeServer) -> None:
    assert httpx.get(server.url("/healthz")).json() == {"status": "ok"}
    assert httpx.get(server.url("/readyz")).headers["content-type"].startswith("application/json")
    assert httpx.get(server.url("/metrics")).headers["content-type"].startswith("text/plain")
    assert httpx.get(server.url("/api/v2/ping")).json()["status"] == "success"
    for method in ("GET", "POST"):
        response = httpx.request(method, server.url("/api/v2/no-such-route"))
        assert response.status_code == 404, method  # not the dashboard, not a 405
        assert response.json()["error"]["code"] == "not_found"
    assert httpx.get(server.url("/api")).status_code == 404
    assert httpx.get(server.url("/healthz/x")).status_code == 404
    metrics = httpx.get(server.url("/metrics")).text
    assert 'route="<unmatched>",status="404"' in metrics


def test_paths_outside_the_build_are_not_served(server: FloeServer) -> None:
    for target in ("/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt",
                   "/assets/..%2f..%2fsecret.txt", "/..%2fsecret.txt"):
        answer = _raw_get(server.http_port, target)
        assert "outside the build" not in answer, target


def test_odd_paths_are_answered_not_crashed(server: FloeServer) -> None:
    for target in ("/a%00b.js", "/assets/%00", "/" + "x" * 5000, "/" + "d/" * 300 + "f.js"):
        status = int(_raw_get(server.http_port, target).split(" ", 2)[1])
        assert status in (200, 404, 414), (target[:40], status)  # never a 500


def test_http2_over_tls(server: FloeServer) -> None:
    with httpx.Client(http2=True, verify=server.ssl_context()) as client:
        response = client.get(server.url("/rules", tls=True))
        assert response.http_version == "HTTP/2"
        assert response.status_code == 200 and response.text == INDEX
        asset = client.get(server.url("/" + ASSET, tls=True))
        assert asset.status_code == 200 and asset.text == SCRIPT


def test_http3(server: FloeServer) -> None:
    async def fetch() -> list[tuple[int, str | None, bytes]]:
        async with h3_connect("127.0.0.1", server.https_port, cafile=server.cert_file) as client:
            out = []
            for path in ("/dashboard", "/" + ASSET):
                response = await client.request("GET", path)
                out.append((response.status, response.header("cache-control"), response.body))
            return out

    (index_status, index_cache, index_body), (asset_status, asset_cache, asset_body) = (
        asyncio.run(fetch()))
    assert (index_status, index_cache, index_body) == (200, "no-cache", INDEX.encode())
    assert (asset_status, asset_cache) == (200, "public, max-age=31536000, immutable")
    assert asset_body == SCRIPT.encode() or gzip.decompress(asset_body) == SCRIPT.encode()


def test_not_built_says_how_to_build(tmp_path: Path) -> None:
    with FloeServer.start(env={"FLOE_WEBUI_DIR": str(tmp_path)}) as srv:
        response = httpx.get(srv.url("/"))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "webui_not_built"
        assert "make dev" in response.json()["error"]["message"]
        assert str(tmp_path) not in response.text  # the server's paths stay in its log


def test_bad_webui_dir_stops_start_up_with_one_line(tmp_path: Path) -> None:
    env = {"FLOE_WEBUI_DIR": str(tmp_path / "nope"), "FLOE_DATA_DIR": str(tmp_path / "d"),
           "PYTHONPATH": str(REPO_ROOT), "HTTP_PORT": "0", "HTTPS_PORT": "0", "GRPC_PORT": "0",
           "METRICS_PORT": "0", "SECRET_KEY": "x" * 40}
    done = subprocess.run([str(PYTHON), "-m", "app.cli", "serve"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "FLOE_WEBUI_DIR" in lines[0], done.stderr
