"""Access and refresh tokens: every malformed, forged, expired or revoked token is a 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from quart import Quart

from app.runtime import get_runtime
from tests.integration.identity.conftest import bearer, login

SECRET = "test-secret-key-not-for-production-0123456789"


async def _me(app: Quart, token: str) -> int:
    response = await app.test_client().get("/api/v2/me", headers=bearer(token))
    return response.status_code


def _claims(**over: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "1",
        "fam": "x",
        "scopes": "users:admin",
        "iat": now,
        "exp": now + 60,
        "iss": "floe",
        "jti": "j",
        "typ": "access",
    }
    claims.update(over)
    return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hmac_token(alg: str, key: bytes, **over: object) -> str:
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512, "RS256": hashlib.sha256}[alg]
    signing = (
        _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
        + "."
        + _b64(json.dumps(_claims(**over)).encode())
    )
    return signing + "." + _b64(hmac.new(key, signing.encode(), digest).digest())


def real_claims(tokens: dict[str, str]) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(
        tokens["access_token"], options={"verify_signature": False}
    )
    return {"fam": claims["fam"], "stp": claims["stp"]}


async def test_valid_token_then_forgeries(identity_app: Quart) -> None:
    tokens = await login(identity_app)
    assert await _me(identity_app, tokens["access_token"]) == 200
    header, payload, signature = tokens["access_token"].split(".")
    # Wrong signature.
    assert await _me(identity_app, f"{header}.{payload}.{signature[:-4]}AAAA") == 401
    # Signed with another secret.
    assert (
        await _me(
            identity_app, jwt.encode(_claims(), "another-secret-of-enough-length-000", "HS256")
        )
        == 401
    )
    # alg=none.
    unsigned = jwt.encode(_claims(), key=None, algorithm="none")
    assert await _me(identity_app, unsigned) == 401
    # RS256 with a key the server has never seen; and HS/RS confusion (HMAC keyed by a PEM).
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert await _me(identity_app, jwt.encode(_claims(), private, algorithm="RS256")) == 401
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # HS/RS confusion: HMAC keyed with a public key, and an RS256 header over an HMAC signature.
    assert await _me(identity_app, _hmac_token("HS256", pem)) == 401
    assert await _me(identity_app, _hmac_token("RS256", SECRET.encode())) == 401
    # Right secret but another HMAC algorithm: still refused (only HS256 is accepted).
    assert await _me(identity_app, _hmac_token("HS512", SECRET.encode())) == 401
    # Sanity: the hand-made HS256 token with the right secret is accepted, so the above can fail.
    assert (
        await _me(identity_app, _hmac_token("HS256", SECRET.encode(), **real_claims(tokens))) == 200
    )
    # Expired, and missing claims, with the right key.
    assert (
        await _me(identity_app, jwt.encode(_claims(exp=int(time.time()) - 5), SECRET, "HS256"))
        == 401
    )
    assert await _me(identity_app, jwt.encode({"sub": "1"}, SECRET, "HS256")) == 401
    # A refresh-typed or garbage token.
    assert await _me(identity_app, jwt.encode(_claims(typ="refresh"), SECRET, "HS256")) == 401
    assert await _me(identity_app, "not-a-token") == 401
    assert await _me(identity_app, "floe_short") == 401


async def test_refresh_rotation_and_reuse_revokes_family(identity_app: Quart) -> None:
    client = identity_app.test_client()
    first = await login(identity_app)
    response = await client.post(
        "/api/v2/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert response.status_code == 200
    second = (await response.get_json())["data"]
    assert second["refresh_token"] != first["refresh_token"]
    assert await _me(identity_app, second["access_token"]) == 200
    # Reusing the first (already used) refresh token revokes the whole family...
    response = await client.post(
        "/api/v2/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert response.status_code == 401
    # ...so the second refresh token and every access token of the family die at once.
    response = await client.post(
        "/api/v2/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert response.status_code == 401
    assert await _me(identity_app, second["access_token"]) == 401
    assert await _me(identity_app, first["access_token"]) == 401
    # Another login (another family) is unaffected.
    assert await _me(identity_app, (await login(identity_app))["access_token"]) == 200


async def test_logout_revokes_access_and_refresh(identity_app: Quart) -> None:
    client = identity_app.test_client()
    tokens = await login(identity_app)
    response = await client.post(
        "/api/v2/auth/logout", json={}, headers=bearer(tokens["access_token"])
    )
    assert response.status_code == 200
    assert await _me(identity_app, tokens["access_token"]) == 401
    response = await client.post(
        "/api/v2/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert response.status_code == 401
    # Nothing to revoke: 401.
    assert (await client.post("/api/v2/auth/logout", json={})).status_code == 401


async def test_revocation_survives_restart(make_settings, sqlite_env) -> None:  # type: ignore[no-untyped-def]
    from app.factory import create_app
    from tests.integration.identity.conftest import FAST

    settings = make_settings(**sqlite_env, **FAST)
    first = create_app(settings)
    async with first.test_app():
        tokens = await login(first)
        client = first.test_client()
        await client.post("/api/v2/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    second = create_app(settings)
    async with second.test_app():
        assert await _me(second, tokens["access_token"]) == 401


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": 1, "password": "x"},
        {"email": "a@b", "password": ""},
        {"email": "a" * 300 + "@b.c", "password": "x"},
        {"email": "a@b.c", "password": "x", "extra": 1},
    ],
)
async def test_login_bad_input_is_422(identity_app: Quart, body: dict[str, object]) -> None:
    response = await identity_app.test_client().post("/api/v2/auth/login", json=body)
    assert response.status_code == 422
    assert (await response.get_json())["status"] == "error"


async def test_login_failures_lockout_and_tracking(identity_app: Quart) -> None:
    client = identity_app.test_client()
    bad = {"email": "admin@localhost.local", "password": "wrong-password"}
    for _ in range(5):
        response = await client.post("/api/v2/auth/login", json=bad)
        assert response.status_code == 401
    response = await client.post(
        "/api/v2/auth/login", json={"email": "admin@localhost.local", "password": "admin123"}
    )
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    db = get_runtime(identity_app).components["db"]
    actions = await db.run(lambda dal: [r.action for r in dal(dal.audit_log.id > 0).select()])
    assert actions.count("login_failed") == 5 and "lockout" in actions
