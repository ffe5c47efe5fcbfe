"""The dashboard: the built single-page app (webui/dist) served by the Quart process.

- `/` and every client-side route (a path without a file extension) answer `index.html`
  with `Cache-Control: no-cache`, so a new build is picked up on the next load;
- `/assets/*` (Vite's content-hashed files) are cached for a year, `immutable`;
- other files in dist/ (favicon, logo) are `no-cache` with an ETag (cheap 304s);
- `/api/...`, `/healthz`, `/readyz` and `/metrics` never reach this module: the catch-all's
  converter refuses those prefixes, so they keep their own answers and unknown API paths
  stay JSON 404s (and `<unmatched>` in metrics);
- every answer here carries the dashboard's Content-Security-Policy (`CSP`: scripts and
  styles from this origin only, no inline script, no framing), added with the other
  security headers by the transport (`app/serving/headers.py`), as for every path.

Text files are gzip-compressed once and kept in memory (bounded by MAX_CACHED_BYTES; the
build is ~0.6 MB), keyed by size and mtime so a rebuild is served without a restart.
`FLOE_WEBUI_DIR` points elsewhere (a packaged build); unset, it is `<repo>/webui/dist`.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from quart import Blueprint, Quart, Response, request
from quart_schema import hide
from werkzeug.routing import PathConverter

from app.api.access import public
from app.api.envelope import ApiError
from app.config import ConfigError
from app.runtime import get_runtime

__all__ = [
    "ASSET_CACHE",
    "CSP",
    "DEFAULT_DIST",
    "INDEX_CACHE",
    "MAX_CACHED_BYTES",
    "SpaPathConverter",
    "bp",
    "init_app",
]

logger = logging.getLogger(__name__)
_warned_unbuilt: set[Path] = set()

DEFAULT_DIST = Path(__file__).resolve().parents[2] / "webui" / "dist"
ASSET_CACHE = "public, max-age=31536000, immutable"
INDEX_CACHE = "no-cache"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Files larger than this are sent from disk each time; the whole cache never exceeds it x4.
MAX_CACHED_BYTES = 4 << 20
_COMPRESSIBLE = (".js", ".css", ".html", ".svg", ".json", ".txt", ".map", ".ico")

bp = Blueprint("webui", __name__)


class SpaPathConverter(PathConverter):
    """A path that is not the API's or a probe's (those keep their own 404/405 answers)."""

    regex = r"(?!(?:api|healthz|readyz|metrics)(?:/|$))[^/].*?"


@dataclass(slots=True, frozen=True)
class _File:
    key: tuple[int, int]  # (size, mtime_ns): a rebuild changes it
    body: bytes
    gzipped: bytes | None
    etag: str
    mimetype: str


class _Dist:
    """The build directory with a bounded in-memory copy of its small files."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._files: dict[Path, _File] = {}
        self._bytes = 0

    def resolve(self, path: str) -> Path | None:
        """The file under root for a URL path, or None (missing, a directory, or outside)."""
        try:
            candidate = (self.root / path).resolve()
            if candidate != self.root and self.root not in candidate.parents:
                return None
            return candidate if candidate.is_file() else None
        except (OSError, ValueError):  # a NUL byte, a name too long for the filesystem
            return None

    def load(self, path: Path) -> _File | None:
        stat = path.stat()
        key = (stat.st_size, stat.st_mtime_ns)
        cached = self._files.get(path)
        if cached is not None and cached.key == key:
            return cached
        if stat.st_size > MAX_CACHED_BYTES:
            return None
        body = path.read_bytes()
        gzipped = None
        if path.suffix in _COMPRESSIBLE and len(body) > 512:
            packed = gzip.compress(body, compresslevel=9, mtime=0)
            gzipped = packed if len(packed) < len(body) else None
        mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if mimetype.startswith("text/") or mimetype in ("application/javascript", "image/svg+xml"):
            mimetype += "; charset=utf-8"
        entry = _File(key, body, gzipped, f'"{hashlib.sha256(body).hexdigest()[:32]}"', mimetype)
        if cached is not None:
            self._bytes -= len(cached.body) + len(cached.gzipped or b"")
        size = len(body) + len(gzipped or b"")
        if self._bytes + size > 4 * MAX_CACHED_BYTES:
            self._files.clear()
            self._bytes = 0
        self._files[path] = entry
        self._bytes += size
        return entry


def _dist() -> _Dist:
    dist: _Dist = get_runtime().components["webui_dist"]
    return dist


def _respond(entry: _File, cache_control: str) -> Response:
    headers = {"Cache-Control": cache_control, "ETag": entry.etag, "Vary": "Accept-Encoding"}
    if request.headers.get("If-None-Match") == entry.etag:
        return Response(b"", status=304, headers=headers)
    body = entry.body
    if entry.gzipped is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
        body = entry.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, status=200, content_type=entry.mimetype, headers=headers)


async def _send(path: Path, cache_control: str) -> Response:
    entry = _dist().load(path)
    if entry is None:  # too big to keep in memory: straight from disk
        from quart import send_file

        response = await send_file(path, conditional=True)
        response.headers["Cache-Control"] = cache_control
        return response
    return _respond(entry, cache_control)


async def _index() -> Response:
    dist = _dist()
    index = dist.resolve("index.html")
    if index is None:
        # the path is the operator's to see (in the log, once), not every visitor's
        if dist.root not in _warned_unbuilt:
            _warned_unbuilt.add(dist.root)
            logger.warning("the dashboard is not built: %s has no index.html", dist.root)
        raise ApiError(
            404,
            "webui_not_built",
            "The dashboard is not built: run `make dev`, "
            "or `npm --prefix webui ci && npm --prefix webui run build`",
        )
    return await _send(index, INDEX_CACHE)


@bp.get("/")
@public
@hide  # not part of the API: kept out of the OpenAPI document
async def index() -> Response:
    return await _index()


@bp.get("/<spa:path>")
@public
@hide
async def spa(path: str) -> Response:
    dist = _dist()
    found = dist.resolve(path)
    if found is not None:
        return await _send(found, ASSET_CACHE if path.startswith("assets/") else INDEX_CACHE)
    if "." in path.rsplit("/", 1)[-1] or path.startswith("assets/"):
        raise ApiError(404, "not_found", f"No file /{path} in the dashboard build")
    return await _index()  # a client-side route: the app's router decides


def init_app(app: Quart) -> None:
    """Register the catch-all after the API's routes exist (the converter keeps it off them)."""
    raw = get_runtime(app).settings.extra.get("FLOE_WEBUI_DIR", "").strip()
    root = Path(raw) if raw else DEFAULT_DIST
    if raw and not root.is_dir():
        raise ConfigError(f"FLOE_WEBUI_DIR={raw!r} is not a directory")
    get_runtime(app).components["webui_dist"] = _Dist(root)
    app.url_map.converters["spa"] = SpaPathConverter
    app.register_blueprint(bp)
