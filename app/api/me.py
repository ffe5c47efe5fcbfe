"""/me: who am I (no database round trip), my profile, password and TOTP 2FA."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, request
from quart_schema import document_response, validate_querystring, validate_request

from app.api.access import authenticated, require_principal
from app.api.envelope import ApiError, ok
from app.api.openapi import answers
from app.identity import get_identity, get_sessions
from app.identity.web import Password, StrictModel, client_ip, user_json

__all__ = ["bp"]

bp = Blueprint("me", __name__)

_USER_REQUIRED = "`user_required`: an API key has no user account"


class ProfileBody(StrictModel):
    display_name: str | None = Field(default=None, max_length=128, strict=True)


class PasswordBody(StrictModel):
    current_password: str = Field(min_length=1, max_length=256, strict=True)
    new_password: Password


class CodeBody(StrictModel):
    code: str = Field(min_length=1, max_length=32, strict=True)


class CodeQuery(BaseModel):
    """`?code=` on DELETE /me/2fa/totp, for clients that send no body; a JSON body's code wins
    (then this one is not looked at). Other parameters are ignored, as they always were."""

    model_config = ConfigDict(extra="ignore")

    code: str | None = Field(default=None, max_length=32,
                             description="A current TOTP or recovery code (when 2FA is on)")


class Caller(BaseModel):
    """GET /me (docs only: the view builds it from the Principal)."""

    kind: Literal["user", "api_key", "session"]
    subject: str
    user_id: int | None
    client_id: int | None
    email: str | None
    scopes: list[str]
    teams: list[int]


async def _user_id() -> int:
    principal = await require_principal()
    if principal.user_id is None or principal.kind == "api_key":
        raise ApiError(403, "user_required", "This operation needs a user login, not an API key")
    return principal.user_id


@bp.get("/me")
@document_response(Caller)
@authenticated
async def me() -> Response:
    """The caller as authenticated for this request: identity, scopes and teams."""
    principal = await require_principal()
    return ok(
        {
            "kind": principal.kind,
            "subject": principal.subject,
            "user_id": principal.user_id,
            "client_id": principal.client_id,
            "email": principal.email,
            "scopes": sorted(principal.scopes),
            "teams": sorted(principal.teams),
            # node id -> scopes a node grant gives there (what a node-granted user may see)
            "node_scopes": {
                node: sorted(scopes) for node, scopes in sorted(principal.node_scopes.items())
            },
        }
    )


@bp.get("/me/profile")
@answers(errors={403: _USER_REQUIRED})
@authenticated
async def profile() -> Response:
    user_id = await _user_id()
    return ok(user_json(await get_identity().get_user(user_id)))


@bp.patch("/me/profile")
@answers(errors={403: _USER_REQUIRED})
@authenticated
@validate_request(ProfileBody)
async def update_profile(data: ProfileBody) -> Response:
    user_id = await _user_id()
    principal = await require_principal()
    user = await get_identity().update_user(
        user_id, actor=principal, ip=client_ip(), display_name=data.display_name
    )
    return ok(user_json(user))


@bp.post("/me/password")
@answers(errors={403: _USER_REQUIRED + ", or `invalid_credentials`: the current password is wrong"})
@authenticated
@validate_request(PasswordBody)
async def change_password(data: PasswordBody) -> Response:
    user_id = await _user_id()
    await get_identity().change_password(
        user_id, data.current_password, data.new_password, client_ip()
    )
    return ok({"changed": True})


@bp.post("/me/2fa/totp")
@answers(201, {403: _USER_REQUIRED, 409: "`totp_enabled`: already on"})
@authenticated
async def totp_enrol() -> Response:
    user_id = await _user_id()
    return ok(await get_identity().totp_enrol(user_id, client_ip()), status=201)


@bp.post("/me/2fa/totp/verify")
@answers(errors={
    403: _USER_REQUIRED,
    409: "`totp_enabled` or `totp_not_enrolled`",
    422: "`invalid_code`",
})
@authenticated
@validate_request(CodeBody)
async def totp_verify(data: CodeBody) -> Response:
    user_id = await _user_id()
    codes = await get_identity().totp_verify(user_id, data.code, client_ip())
    return ok({"enabled": True, "recovery_codes": codes})


@bp.delete("/me/2fa/totp")
@answers(errors={
    403: _USER_REQUIRED,
    422: "`invalid_code`: a current code is needed while 2FA is on",
})
@authenticated
@validate_querystring(CodeQuery)
async def totp_disable(query_args: CodeQuery) -> Response:
    """Needs a current TOTP or recovery code as `{"code"}` or `?code=` when 2FA is on."""
    user_id = await _user_id()
    body = await request.get_json(silent=True)
    code = body.get("code") if isinstance(body, dict) else query_args.code
    if code is not None and (not isinstance(code, str) or not 0 < len(code) <= 32):
        raise ApiError(422, "validation_error", "code must be a string of at most 32 characters")
    await get_identity().totp_disable(user_id, code, client_ip())
    return ok({"enabled": False})


@bp.post("/me/logout-everywhere")
@authenticated
async def logout_everywhere() -> Response:
    """End every session and token of the caller (this one too): the security stamp changes
    and every refresh family is revoked. The answer clears this browser's cookies."""
    user_id = await _user_id()
    revoked = await get_identity().logout_everywhere(user_id, client_ip())
    response = ok({"revoked": revoked})
    sessions = get_sessions()
    if sessions.session_family() is not None:
        sessions.end(response)
    return response
