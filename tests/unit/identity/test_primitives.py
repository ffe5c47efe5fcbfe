"""Pure identity parts: scope catalogue, JWT codec, key format, TOTP, one-time tokens, throttle."""

from __future__ import annotations

import time

import jwt
import pyotp
import pytest

import app.identity as identity_pkg
from app.identity.apikeys import hash_key, new_key, parse_key
from app.identity.jwt_tokens import JwtCodec
from app.identity.limits import LoginThrottle
from app.identity.onetime import OneTimeTokens
from app.identity.passwords import Passwords
from app.identity.scopes import BUILTIN_ROLES, SCOPES, UnknownScopeError, normalise_scopes
from app.identity.totp import new_recovery_codes, new_totp_secret, verify_totp
from app.types import Principal

SECRET = "unit-secret-key-0123456789-0123456789"


def test_catalogue_has_the_names_other_layers_use() -> None:
    for scope in (
        "stats:read",
        "flows:read",
        "dataplane:read",
        "dataplane:write",
        "rules:read",
        "rules:write",
    ):
        assert scope in SCOPES
    with pytest.raises(UnknownScopeError) as error:
        normalise_scopes(["stats:read", "stats:fly", "bogus"])
    assert error.value.unknown == ["bogus", "stats:fly"]


def test_builtin_roles_follow_the_standard() -> None:
    roles = {role.name: role for role in BUILTIN_ROLES}
    assert roles["admin"].scopes == SCOPES
    maintainer = Principal(kind="user", subject="m", scopes=roles["maintainer"].scopes)
    viewer = Principal(kind="user", subject="v", scopes=roles["viewer"].scopes)
    assert maintainer.has("rules:write") and not maintainer.has("users:read")
    assert not maintainer.has("users:write") and not maintainer.has("roles:write")
    assert viewer.has("flows:read") and not viewer.has("rules:write")
    assert all(scope.endswith(":read") for scope in roles["viewer"].scopes)
    assert {role.level for role in BUILTIN_ROLES} == {"global", "team", "resource"}


def test_jwt_round_trip_and_rejections() -> None:
    codec = JwtCodec(SECRET, ttl=60)
    token = codec.issue(7, "fam", ["stats:read"], "stamp")
    claims = codec.decode(token)
    assert claims is not None and claims.user_id == 7 and claims.scopes == {"stats:read"}
    assert JwtCodec("another-secret-0123456789-0123456789", 60).decode(token) is None
    expired = JwtCodec(SECRET, ttl=-10).issue(7, "fam", [], "s")
    assert codec.decode(expired) is None
    none_alg = jwt.encode(
        {
            "sub": "7",
            "fam": "f",
            "typ": "access",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
            "iss": "floe",
        },
        "",  # PyJWT's "none" algorithm takes an empty key
        algorithm="none",
    )
    assert codec.decode(none_alg) is None


def test_jwt_memo_still_checks_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = JwtCodec(SECRET, ttl=60)
    token = codec.issue(7, "fam", [], "s")
    assert codec.decode(token) is not None  # verified and memoised
    assert codec.decode(token) is not None  # memo hit
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 120)  # the module jwt_tokens reads
    assert codec.decode(token) is None


def test_api_key_format() -> None:
    key, prefix = new_key()
    parsed = parse_key(key)
    assert parsed is not None and parsed.prefix == prefix and len(prefix) == 12
    assert hash_key(key) != key and len(hash_key(key)) == 64
    assert parse_key("floe_short_x") is None and parse_key(key + "x") is None
    assert new_key()[0] != key


def test_totp_and_recovery_codes() -> None:
    secret = new_totp_secret()
    assert verify_totp(secret, pyotp.TOTP(secret).now())
    assert not verify_totp(secret, "12345") and not verify_totp(secret, "abcdef")
    plain, hashes = new_recovery_codes()
    assert len(set(plain)) == 10 and len(set(hashes)) == 10 and not set(plain) & set(hashes)


def test_one_time_tokens_are_purpose_bound() -> None:
    tokens = OneTimeTokens(SECRET)
    reset = tokens.issue("reset", 3)
    assert tokens.load("reset", reset) == 3
    assert tokens.load("confirm", reset) is None
    body, signature = reset.rsplit(".", 1)
    # a different first character: all its 6 bits are signature (the last one's are partly
    # base64 padding, so replacing the tail could leave the signature as it was)
    forged = f"{body}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
    assert tokens.load("reset", forged) is None
    assert OneTimeTokens("x" * 40).load("reset", reset) is None


def test_throttle_window() -> None:
    throttle = LoginThrottle(max_failures=3, window=60, max_addresses=2)
    for _ in range(3):
        assert throttle.retry_after("a") == 0
        throttle.failed("a")
    assert 0 < throttle.retry_after("a") <= 60
    throttle.failed("b")
    throttle.failed("c")  # evicts the oldest address
    assert throttle.evicted == 1 and throttle.retry_after("a") == 0


async def test_passwords_off_loop_and_constant_answer() -> None:
    passwords = Passwords("fast")
    stored = await passwords.hash("correct horse")
    assert stored.startswith("$argon2id$")
    assert await passwords.verify(stored, "correct horse")
    assert not await passwords.verify(stored, "wrong")
    assert not await passwords.verify(None, "anything")
    assert not await passwords.verify("garbage", "anything")


def test_public_surface() -> None:
    assert set(identity_pkg.__all__) >= {"ensure_defaults", "provision_api_key", "init_app"}
    for name in identity_pkg.__all__:
        assert hasattr(identity_pkg, name)
