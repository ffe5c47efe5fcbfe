"""In-memory state that keeps the DB off the per-request path, with explicit invalidation.

- users: user id -> UserState (scopes, active, not-before), loaded on first use.
- keys: key prefix -> ApiKeyRecord, loaded on first use; unknown prefixes cached negatively.
- revoked families: refresh family id -> until (epoch), so revoked access tokens fail at once.
Every mutation in the service calls the matching `forget_*` after its transaction commits.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.identity.records import ApiKeyRecord, UserState

__all__ = ["IdentityCache"]

_MISSING_MAX = 4096
_MISSING_TTL = 30.0


@dataclass(slots=True)
class IdentityCache:
    users: dict[int, UserState] = field(default_factory=dict)
    keys: dict[str, ApiKeyRecord] = field(default_factory=dict)
    missing_keys: OrderedDict[str, float] = field(default_factory=OrderedDict)
    revoked_families: dict[str, float] = field(default_factory=dict)
    stats: dict[str, int] = field(
        default_factory=lambda: {"user_hits": 0, "user_misses": 0, "key_hits": 0, "key_misses": 0}
    )
    # Set when REDIS_URL is configured: tells the other instances (see invalidation.py).
    publish: Callable[[dict[str, Any]], None] | None = None

    def _tell(self, event: dict[str, Any], publish: bool) -> None:
        if publish and self.publish is not None:
            self.publish(event)

    def drop_all(self) -> None:
        """Forget every cached user and key (after missing invalidations)."""
        self.users.clear()
        self.keys.clear()
        self.missing_keys.clear()

    def forget_user(self, user_id: int, publish: bool = True) -> None:
        self._tell({"k": "user", "id": user_id}, publish)
        self.users.pop(user_id, None)
        # Keys owned by the user are bounded by the user's scopes: drop them too, and the
        # negative entries (a deactivated owner's keys are cached as missing).
        for prefix in [p for p, k in self.keys.items() if k.owner_user_id == user_id]:
            del self.keys[prefix]
        self.missing_keys.clear()

    def forget_all_users(self, publish: bool = True) -> None:
        """A role's scopes changed: every user holding it may be affected."""
        self._tell({"k": "users"}, publish)
        self.users.clear()
        for prefix in [p for p, k in self.keys.items() if k.owner_user_id is not None]:
            del self.keys[prefix]
        self.missing_keys.clear()

    def forget_key(self, prefix: str, publish: bool = True) -> None:
        self._tell({"k": "key", "p": prefix}, publish)
        self.keys.pop(prefix, None)
        self.missing_keys.pop(prefix, None)

    def key_missing(self, prefix: str) -> bool:
        until = self.missing_keys.get(prefix)
        if until is None:
            return False
        if until < time.monotonic():
            del self.missing_keys[prefix]
            return False
        return True

    def note_missing(self, prefix: str) -> None:
        self.missing_keys[prefix] = time.monotonic() + _MISSING_TTL
        self.missing_keys.move_to_end(prefix)
        while len(self.missing_keys) > _MISSING_MAX:
            self.missing_keys.popitem(last=False)

    def revoke_family(self, family: str, until: float, publish: bool = True) -> None:
        self._tell({"k": "family", "f": family, "u": until}, publish)
        self.revoked_families[family] = until
        if len(self.revoked_families) > 10_000:
            now = time.time()
            for fam in [f for f, u in self.revoked_families.items() if u < now]:
                del self.revoked_families[fam]

    def family_revoked(self, family: str) -> bool:
        return family in self.revoked_families
