"""JWT access tokens: HS256 with SECRET_KEY, and nothing else is ever accepted.

Claims: sub (user id), fam (refresh family, revoked on logout), scopes, iat, exp, jti, typ,
stp (the user's security stamp: a password change invalidates every earlier token).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt

__all__ = ["AccessClaims", "JwtCodec"]

ALGORITHM = "HS256"


@dataclass(slots=True, frozen=True)
class AccessClaims:
    user_id: int
    family: str
    scopes: frozenset[str]
    issued_at: int
    expires_at: int
    stamp: str


class JwtCodec:
    """Issue and verify access tokens.

    PyJWT's verification costs ~65 µs (pure-Python base64 checks), more than the whole rest
    of an authenticated request; verified tokens are therefore memoised (token string ->
    claims, bounded LRU). A hit still checks expiry; revocation is checked by the caller on
    every request, so the memo never outlives a logout or password change.
    """

    def __init__(self, secret: str, ttl: int, issuer: str = "floe", memo_size: int = 8192) -> None:
        self._secret = secret
        self.ttl = ttl
        self._issuer = issuer
        self._memo: OrderedDict[str, AccessClaims] = OrderedDict()
        self._memo_size = memo_size

    def issue(self, user_id: int, family: str, scopes: Iterable[str], stamp: str) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "sub": str(user_id),
            "fam": family,
            "scopes": " ".join(sorted(scopes)),
            "iat": now,
            "exp": now + self.ttl,
            "iss": self._issuer,
            "jti": secrets.token_urlsafe(12),
            "typ": "access",
            "stp": stamp,
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def decode(self, token: str) -> AccessClaims | None:
        """None for any defect: bad signature, other algorithm, expired, wrong issuer/type."""
        claims = self._memo.get(token)
        if claims is not None:
            if claims.expires_at > time.time():
                return claims
            del self._memo[token]
            return None
        claims = self._verify(token)
        if claims is not None:
            self._memo[token] = claims
            if len(self._memo) > self._memo_size:
                self._memo.popitem(last=False)
        return claims

    def _verify(self, token: str) -> AccessClaims | None:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                options={"require": ["sub", "exp", "iat", "fam", "typ"]},
            )
        except jwt.PyJWTError:
            return None
        if payload.get("typ") != "access":
            return None
        try:
            return AccessClaims(
                user_id=int(payload["sub"]),
                family=str(payload["fam"]),
                scopes=frozenset(str(payload.get("scopes", "")).split()),
                issued_at=int(payload["iat"]),
                expires_at=int(payload["exp"]),
                stamp=str(payload.get("stp", "")),
            )
        except (TypeError, ValueError):
            return None
