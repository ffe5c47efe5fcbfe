"""Transport-side concerns of the Quart app: request ids, v1 deprecation headers, probes."""

from __future__ import annotations

from quart import Quart, Response, request

from app.logging import correlation_id, new_correlation_id

__all__ = ["init_app"]

V1_SUNSET = "Tue, 01 Jun 2027 00:00:00 GMT"


def init_app(app: Quart) -> None:
    @app.before_request
    async def _request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        correlation_id.set(incoming[:64] if incoming.isprintable() and incoming else new_correlation_id())

    @app.after_request
    async def _headers(response: Response) -> Response:
        response.headers["X-Request-ID"] = correlation_id.get()
        if request.path.startswith("/api/v1/"):
            successor = "/api/v2/" + request.path[len("/api/v1/") :]
            response.headers["Deprecation"] = "true"
            response.headers["Sunset"] = V1_SUNSET
            response.headers["Link"] = f'<{successor}>; rel="successor-version"'
            response.headers["Warning"] = '299 - "API v1 is deprecated; use /api/v2"'
        return response

    from app.serving import probes

    app.register_blueprint(probes.bp)
