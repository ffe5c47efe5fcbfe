"""What a web origin is (RFC 6454 serialised form), for the WebSocket Origin check.

Shared by `app.config` (FLOE_ALLOWED_ORIGINS is parsed at start-up, so a typo stops `floe
serve` instead of silently refusing the dashboard) and `app.api.origin` (the check itself):
both must agree on one normal form — lower-case scheme and host, default port left out.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["DEFAULT_PORTS", "normalize_origin", "origin_of"]

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(scheme: str, host: str, port: int | None) -> str:
    """`scheme://host[:port]`, the port left out when it is the scheme's default."""
    scheme, host = scheme.lower(), host.lower()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6 literal
    if port is None or DEFAULT_PORTS.get(scheme) == port:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def normalize_origin(text: str) -> str | None:
    """The normal form of an http(s) origin, or None when `text` is not one (paths, queries,
    user info, other schemes and the opaque `null` origin are not origins here)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        return None
    return origin_of(parts.scheme, parts.hostname, port)
