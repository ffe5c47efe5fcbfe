"""Argon2id password hashing, always off the event loop (one hash costs ~130 ms of CPU).

`FLOE_ARGON2_PROFILE=fast` (tests and benchmarks of everything except login only) lowers the
cost to t=1, m=8 MiB, p=1; production keeps argon2-cffi's RFC 9106 low-memory profile.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["Passwords"]

# Verified against this hash when a user does not exist, so timing does not reveal emails.
_DUMMY_PASSWORD = "floe-dummy-password"  # noqa: S105 - not a credential


class Passwords:
    def __init__(self, profile: str = "default") -> None:
        if profile == "fast":
            self._hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
        else:
            self._hasher = PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4
        self._dummy = self._hasher.hash(_DUMMY_PASSWORD)

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    def _verify(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    async def verify(self, stored: str | None, password: str) -> bool:
        """False for a wrong password or a missing hash (still spends the same time)."""
        return await asyncio.to_thread(self._verify, stored, password)

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True
