"""The Origin check for cookie-authenticated WebSocket upgrades (cross-site WebSocket
hijacking).

A browser sends the session cookie with a WebSocket handshake from *any* page — SameSite
does not protect a top-level site's subresource on every browser, and the handshake is not
subject to CORS — so a foreign page could open `/api/v2/stream` as the signed-in user and
read live telemetry. Browsers always send `Origin` on a WebSocket handshake; a
cookie-authenticated upgrade is allowed only from the server's own origin (scheme-aware:
`ws` ↔ `http`, `wss` ↔ `https`, the `Host` it was reached at) or one listed in
FLOE_ALLOWED_ORIGINS (a dashboard served elsewhere, or a TLS-terminating proxy whose public
origin differs). A missing, `null` or malformed Origin is refused too. Bearer credentials
(the header, `?access_token=`) are not ambient — a foreign page cannot know them — so they
are not checked.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from quart import websocket

from app.api.envelope import ApiError
from app.origins import normalize_origin, origin_of
from app.runtime import get_runtime

__all__ = ["check_websocket_origin", "own_origin"]


def own_origin(scheme: str, host: str) -> str | None:
    """The origin a browser shows for a page of this server reached as `host` over `scheme`
    (a WebSocket scheme maps to its HTTP one)."""
    http_scheme = "https" if scheme in ("wss", "https") else "http"
    try:
        parts = urlsplit(f"//{host}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return origin_of(http_scheme, parts.hostname, port)


def check_websocket_origin() -> None:
    """Raise 403 unless the current WebSocket handshake comes from an allowed origin."""
    sent = websocket.headers.get("Origin")
    origin = normalize_origin(sent) if sent else None
    allowed = get_runtime().settings.allowed_origins
    if origin is not None and (origin == own_origin(websocket.scheme, websocket.host)
                               or origin in allowed):
        return
    raise ApiError(
        403, "origin_not_allowed",
        "A stream authenticated by the session cookie must come from this server's own "
        "origin or one in FLOE_ALLOWED_ORIGINS",
        details={"origin": (sent or "")[:256]},
    )
