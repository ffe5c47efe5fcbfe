"""API key format `floe_<prefix>_<secret>`: the prefix finds the row, the hash proves the key.

Keys carry 256 bits of randomness, so a fast SHA-256 is the right hash (a slow KDF would only
cost CPU per request); lookup is by the 12-character prefix, comparison in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

__all__ = [
    "ParsedKey",
    "hash_key",
    "looks_like_key",
    "new_key",
    "parse_key",
    "same_hash",
    "token_hash",
]

_PREFIX_LEN = 12
_KEY_RE = re.compile(r"^floe_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$")
_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass(slots=True, frozen=True)
class ParsedKey:
    prefix: str
    full: str


def new_key() -> tuple[str, str]:
    """Return (plaintext key, prefix)."""
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(_PREFIX_LEN))
    return f"floe_{prefix}_{secrets.token_urlsafe(32)}", prefix


def looks_like_key(credential: str) -> bool:
    return credential.startswith("floe_")


def parse_key(credential: str) -> ParsedKey | None:
    match = _KEY_RE.match(credential)
    if match is None:
        return None
    return ParsedKey(prefix=match.group(1), full=credential)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def token_hash(token: str) -> str:
    """Hash for other high-entropy secrets stored server-side (refresh, one-time, recovery)."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)
