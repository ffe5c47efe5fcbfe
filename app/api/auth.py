"""/auth: login (tokens and optional browser session), refresh, logout, registration,
email confirmation and password reset."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from quart import Blueprint, Response, request
from quart_schema import document_response, validate_querystring, validate_request

from app.api.access import public
from app.api.envelope import ApiError, ok
from app.api.openapi import answers
from app.identity import get_identity, get_sessions
from app.identity.service import TokenPair
from app.identity.web import Email, Password, StrictModel, client_ip, user_json

__all__ = ["bp"]

bp = Blueprint("auth", __name__)


class LoginBody(StrictModel):
    email: Email
    password: str = Field(min_length=1, max_length=256, strict=True)
    totp_code: str | None = Field(default=None, min_length=1, max_length=32, strict=True)
    # Also start a cookie session (browser dashboard); the JSON answer is the same.
    session: bool = Field(default=False, strict=True)
    # With `session`: false gives browser-session cookies (the dashboard's "remember me").
    remember: bool = Field(default=True, strict=True)


class RefreshBody(StrictModel):
    refresh_token: str = Field(min_length=1, max_length=256, strict=True)


class LogoutBody(StrictModel):
    refresh_token: str | None = Field(default=None, min_length=1, max_length=256, strict=True)


class RegisterBody(StrictModel):
    email: Email
    password: Password


class TokenBody(StrictModel):
    token: str = Field(min_length=1, max_length=512, strict=True)


class ResetRequestBody(StrictModel):
    email: Email


class ResetBody(StrictModel):
    token: str = Field(min_length=1, max_length=512, strict=True)
    password: Password


class Tokens(BaseModel):
    """What login and refresh answer (docs only: `_tokens` builds it)."""

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"]
    expires_in: int = Field(description="Seconds the access token stays valid")


def _tokens(pair: TokenPair) -> dict[str, object]:
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "bearer",
        "expires_in": pair.expires_in,
    }


@bp.post("/auth/login")
@document_response(Tokens)
@answers(errors={
    401: "`invalid_credentials`, or `totp_required` (2FA on, no code sent)",
    403: "`email_unconfirmed`",
    429: "`rate_limited` (failed logins from this address) or `account_locked`",
})
@public
@validate_request(LoginBody)
async def login(data: LoginBody) -> Response:
    identity = get_identity()
    pair = await identity.login(data.email, data.password, data.totp_code, client_ip())
    # The default admin password, or one an admin/operator set: the dashboard asks for a new
    # one (docs/identity.md, "Logins").
    response = ok({**_tokens(pair), "password_change_required": pair.password_change_required})
    if data.session:
        sessions = get_sessions()
        sessions.start(
            response, pair.user_id, pair.family, pair.stamp, persistent=data.remember
        )
    return response


@bp.post("/auth/refresh")
@document_response(Tokens)
@answers(errors={401: "`invalid_token`: invalid, expired, revoked or reused"})
@public
@validate_request(RefreshBody)
async def refresh(data: RefreshBody) -> Response:
    pair = await get_identity().refresh(data.refresh_token, client_ip())
    return ok(_tokens(pair))


@bp.post("/auth/logout")
@answers(errors={401: "`unauthenticated`: no session, access token or refresh token to revoke"})
@public
@validate_request(LogoutBody)
async def logout(data: LogoutBody) -> Response:
    """Revoke the refresh family behind the bearer token, the given refresh token or the
    session cookie (whichever are present); 401 when none identifies a session."""
    identity = get_identity()
    families: dict[str, int] = {}
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer" and credential and not credential.startswith("floe_"):
        claims = identity.jwt.decode(credential.strip())
        if claims is not None:
            families[claims.family] = claims.user_id
    if data.refresh_token:
        found = await identity.family_of_refresh(data.refresh_token)
        if found is not None:
            families[found[0]] = found[1]
    sessions = get_sessions()
    session = sessions.session_family()
    if session is not None:
        # The cookie rides along on any request, a forged cross-site one too: ending the
        # session is a cookie-authenticated write like any other (CSRF token required).
        sessions.require_csrf(session[1])
        families[session[1]] = session[0]
    if not families:
        raise ApiError(
            401, "unauthenticated", "No session, access token or refresh token to revoke"
        )
    for family, user_id in families.items():
        await identity.revoke_family(family, user_id, client_ip())
    response = ok({"revoked": len(families)})
    if session is not None:
        sessions.end(response)
    return response


@bp.post("/auth/register")
@answers(201, {
    403: "`registration_disabled`",
    409: "`conflict`: the email is taken",
    429: "`rate_limited`: register and reset requests per address",
})
@public
@validate_request(RegisterBody)
async def register(data: RegisterBody) -> Response:
    user = await get_identity().register(data.email, data.password, client_ip())
    return ok(user_json(user), status=201)


@bp.post("/auth/confirm")
@answers(errors={400: "`invalid_token`: invalid, expired or already used"})
@public
@validate_request(TokenBody)
async def confirm(data: TokenBody) -> Response:
    await get_identity().confirm(data.token, client_ip())
    return ok({"confirmed": True})


@bp.get("/auth/confirm")
@answers(errors={400: "`invalid_token`: invalid, expired or already used"})
@public
@validate_querystring(TokenBody)
async def confirm_link(query_args: TokenBody) -> Response:
    await get_identity().confirm(query_args.token, client_ip())
    return ok({"confirmed": True})


@bp.post("/auth/password-reset")
@answers(202, {429: "`rate_limited`: register and reset requests per address"})
@public
@validate_request(ResetRequestBody)
async def password_reset_request(data: ResetRequestBody) -> Response:
    await get_identity().request_password_reset(data.email, client_ip())
    return ok({"requested": True}, status=202)


@bp.post("/auth/password-reset/confirm")
@answers(errors={400: "`invalid_token`: invalid, expired or already used"})
@public
@validate_request(ResetBody)
async def password_reset(data: ResetBody) -> Response:
    await get_identity().reset_password(data.token, data.password, client_ip())
    return ok({"reset": True})
