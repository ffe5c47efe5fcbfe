"""Browser sessions: a quart-auth signed cookie, plus CSRF protection on cookie writes.

The cookie (Secure, HttpOnly, SameSite=Strict) carries `<user id>:<refresh family>:<stamp>`,
so logout (which revokes the family) and a password change (new stamp) end it at once. A
second, script-readable cookie `floe_csrf` holds HMAC(secret, family); every unsafe request
authenticated by the session cookie must echo it in `X-CSRF-Token` (double submit, checked
without state). Bearer-authenticated requests never look at cookies, so they need no CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from itsdangerous import BadSignature
from quart import Quart, Response, g, has_request_context, has_websocket_context, request, websocket
from quart_auth import Action, AuthUser, QuartAuth

from app.api.envelope import ApiError
from app.db.errors import DatabaseError
from app.identity.authenticator import BearerAuthenticator
from app.identity.cache import IdentityCache
from app.types import Principal

log = logging.getLogger(__name__)

__all__ = ["CSRF_COOKIE", "CSRF_HEADER", "SESSION_COOKIE", "SessionAuthenticator"]

SESSION_COOKIE = "floe_session"
CSRF_COOKIE = "floe_csrf"
CSRF_HEADER = "X-CSRF-Token"
_SAFE = {"GET", "HEAD", "OPTIONS"}
_SALT = "floe-session"


class _FloeAuth(QuartAuth):
    """quart-auth signing with Floe's SECRET_KEY instead of `app.secret_key`.

    Setting `app.secret_key` would switch on Quart's own cookie session for every request
    (~45 µs each, unused by Floe), so the key is held here instead.
    """

    secret: str = ""

    async def after_request(self, response: Response) -> Response:
        """Skip quart-auth's cookie check when nothing in this request touched the session.

        quart-auth resolves the user on every response (~10 µs) even without a cookie; only a
        login, logout or renewal (which all store the user on `g` first) can change the cookie.
        """
        if self.attribute_name not in g.__dict__:
            return response
        return await super().after_request(response)

    def dump_token(self, auth_id: str, app: Quart | None = None) -> str:
        return str(self.serializer_class(self.secret, self.salt or _SALT).dumps(auth_id))

    def load_token(self, token: str, app: Quart | None = None) -> str | None:
        try:
            value = self.serializer_class(self.secret, self.salt or _SALT).loads(
                token, max_age=self.duration
            )
        except BadSignature:
            return None
        return str(value)


class SessionAuthenticator:
    def __init__(self, app: Quart, *, secure: bool, duration: int) -> None:
        self.secure = secure
        self.duration = duration
        self.auth = _FloeAuth(
            app,
            cookie_name=SESSION_COOKIE,
            cookie_secure=secure,
            cookie_http_only=True,
            cookie_samesite="Strict",
            duration=duration,
            mode="cookie",
            salt=_SALT,
        )
        self._secret = b""
        self._bearer: BearerAuthenticator | None = None
        self._cache: IdentityCache | None = None

    def bind(self, secret: str, bearer: BearerAuthenticator, cache: IdentityCache) -> None:
        self.auth.secret = secret
        self._secret = secret.encode()
        self._bearer = bearer
        self._cache = cache

    def csrf_token(self, family: str) -> str:
        return hmac.new(self._secret, b"csrf:" + family.encode(), hashlib.sha256).hexdigest()

    def start(
        self, response: Response, user_id: int, family: str, stamp: str, *, persistent: bool = True
    ) -> None:
        """Log the user in: writes the session cookie (after_request) and the CSRF cookie.

        `persistent=False` ("remember me" unticked) makes both browser-session cookies (no
        Max-Age: gone when the browser closes); the signed value still expires after
        `duration` either way."""
        action = Action.WRITE_PERMANENT if persistent else Action.WRITE
        self.auth.login_user(AuthUser(f"{user_id}:{family}:{stamp}", action))
        response.set_cookie(
            CSRF_COOKIE,
            self.csrf_token(family),
            max_age=self.duration if persistent else None,
            secure=self.secure,
            httponly=False,
            samesite="Strict",
            path="/",
        )

    def end(self, response: Response) -> None:
        self.auth.logout_user()
        response.delete_cookie(CSRF_COOKIE, path="/", secure=self.secure, samesite="Strict")

    def require_csrf(self, family: str) -> None:
        """403 unless the request echoes the session's CSRF token: every unsafe request that
        the session cookie authenticates, or whose effect reaches the session (logout)."""
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), self.csrf_token(family).encode()):
            raise ApiError(
                403, "csrf_failed", f"Cookie-authenticated writes need the {CSRF_HEADER} header"
            )

    def session_family(self) -> tuple[int, str, str] | None:
        """(user id, refresh family, security stamp) from a validly signed cookie."""
        auth_id = self.auth.load_user().auth_id
        if not auth_id:
            return None
        parts = auth_id.split(":")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1]:
            return None
        return int(parts[0]), parts[1], parts[2]

    async def authenticate_request(self) -> Principal | None:
        if self._bearer is None or self._cache is None:
            return None
        found = self.session_family()
        if found is None:
            return None
        user_id, family, stamp = found
        if self._cache.family_revoked(family):
            return None
        if has_request_context() and request.method not in _SAFE:
            self.require_csrf(family)
        elif has_websocket_context():
            _ = websocket.headers  # cookies are read by quart-auth; no CSRF on a read-only stream
        try:
            state = await self._bearer.user_state(user_id)
        except DatabaseError:  # as for bearer credentials: a 503, never a crash or a pass
            log.warning("session authentication needs the database, which is unavailable",
                        exc_info=True)
            raise ApiError(503, "unavailable", "Authentication is temporarily unavailable") \
                from None
        if state is None or not state.active or state.stamp != stamp:
            return None
        return state.principal("session")
