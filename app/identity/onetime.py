"""Signed, expiring, single-use tokens for email confirmation and password reset.

itsdangerous signs `{"u": user_id, "n": nonce}` with a per-purpose salt and a max age; the
hash of the token is stored in `one_time_token` and marked used on first redemption, so a
token works once even though its signature stays valid until it expires.
"""

from __future__ import annotations

import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer

__all__ = ["PURPOSES", "OneTimeTokens"]

PURPOSES = {"confirm": 48 * 3600, "reset": 3600}


class OneTimeTokens:
    def __init__(self, secret: str) -> None:
        self._secret = secret

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._secret, salt=f"floe-{purpose}")

    def issue(self, purpose: str, user_id: int) -> str:
        return str(self._serializer(purpose).dumps({"u": user_id, "n": secrets.token_urlsafe(16)}))

    def load(self, purpose: str, token: str) -> int | None:
        """The user id when signature, purpose and age are right; None otherwise."""
        try:
            data = self._serializer(purpose).loads(token, max_age=PURPOSES[purpose])
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("u"), int):
            return None
        user_id: int = data["u"]
        return user_id
