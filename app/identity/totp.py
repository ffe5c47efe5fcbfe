"""TOTP (RFC 6238 via pyotp) and single-use recovery codes (stored as SHA-256 hashes)."""

from __future__ import annotations

import secrets

import pyotp

from app.identity.apikeys import token_hash

__all__ = [
    "new_recovery_codes",
    "new_totp_secret",
    "normalise_recovery_code",
    "provisioning_uri",
    "verify_totp",
]

ISSUER = "Floe"
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def verify_totp(secret: str, code: str) -> bool:
    """Accept the current step and one step either side (clock skew)."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return False
    return pyotp.TOTP(secret).verify(code, valid_window=1)


def normalise_recovery_code(code: str) -> str:
    return code.strip().lower().replace("-", "").replace(" ", "")


def new_recovery_codes() -> tuple[list[str], list[str]]:
    """Return (plaintext codes shown once as xxxxx-xxxxx-xxxxx, their hashes)."""
    plain: list[str] = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(15))
        plain.append(f"{raw[:5]}-{raw[5:10]}-{raw[10:]}")
    return plain, [token_hash(normalise_recovery_code(code)) for code in plain]
