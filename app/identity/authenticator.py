"""The runtime Authenticator: bearer JWT access tokens and API keys -> Principal.

Hot path without a DB round trip: JWTs are verified in memory and the user's current scopes
come from IdentityCache; API keys are found by prefix in the cache and compared by hash.
Last-used times are collected in memory and written by a background task in batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from app.api.envelope import ApiError
from app.db.errors import DatabaseError
from app.identity import store
from app.identity.apikeys import hash_key, parse_key, same_hash
from app.identity.cache import IdentityCache
from app.identity.jwt_tokens import JwtCodec
from app.identity.records import ApiKeyRecord, UserState, utcnow
from app.types import Principal, covers

__all__ = ["BearerAuthenticator", "LastUsedRecorder"]

log = logging.getLogger(__name__)


class LastUsedRecorder:
    """Collects key uses; flushes them every `interval` seconds in one transaction."""

    def __init__(self, db: Any, interval: float = 5.0) -> None:
        self._db = db
        self._interval = interval
        self._pending: dict[int, datetime] = {}
        self._task: asyncio.Task[None] | None = None
        self.flushes = 0

    def note(self, key_id: int) -> None:
        # Bounded by the number of keys in the database: one entry per key.
        self._pending[key_id] = utcnow()

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        try:
            await self._db.run(lambda dal: store.touch_api_keys(dal, batch))
            self.flushes += 1
        except Exception:
            log.warning("could not record API key last-used times", exc_info=True)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()


class BearerAuthenticator:
    def __init__(
        self, db: Any, jwt: JwtCodec, cache: IdentityCache, recorder: LastUsedRecorder
    ) -> None:
        self._db = db
        self._jwt = jwt
        self._cache = cache
        self._recorder = recorder

    async def user_state(self, user_id: int) -> UserState | None:
        cached = self._cache.users.get(user_id)
        if cached is not None:
            self._cache.stats["user_hits"] += 1
            return cached
        self._cache.stats["user_misses"] += 1
        state: UserState | None = await self._db.run(lambda dal: store.user_state(dal, user_id))
        if state is not None:
            self._cache.users[user_id] = state
        return state

    async def authenticate(self, credential: str) -> Principal | None:
        """None for a bad credential; ApiError 503 when a cache miss cannot reach the DB."""
        try:
            if credential.startswith("floe_"):
                return await self._api_key(credential)
            return await self._access_token(credential)
        except DatabaseError:
            log.warning("authentication needs the database, which is unavailable", exc_info=True)
            raise ApiError(
                503, "unavailable", "Authentication is temporarily unavailable"
            ) from None

    async def _access_token(self, token: str) -> Principal | None:
        claims = self._jwt.decode(token)
        if claims is None or self._cache.family_revoked(claims.family):
            return None
        state = await self.user_state(claims.user_id)
        if state is None or not state.active or claims.stamp != state.stamp:
            return None
        return state.principal("user")

    async def _key_record(self, prefix: str) -> ApiKeyRecord | None:
        record = self._cache.keys.get(prefix)
        if record is not None:
            self._cache.stats["key_hits"] += 1
            return record
        if self._cache.key_missing(prefix):
            return None
        self._cache.stats["key_misses"] += 1
        rows: list[ApiKeyRecord] = await self._db.run(
            lambda dal: store.api_key_by_prefix(dal, prefix)
        )
        live = [row for row in rows if row.revoked_at is None]
        if not live:
            self._cache.note_missing(prefix)
            return None
        record = live[0]
        if record.owner_user_id is not None:
            owner = await self.user_state(record.owner_user_id)
            if owner is None or not owner.active:
                # A deactivated (or deleted) owner's keys stop working with the owner, until
                # the owner changes again (forget_user clears the negative entries).
                self._cache.note_missing(prefix)
                return None
            record.scopes = frozenset(s for s in record.scopes if covers(owner.scopes, s))
        self._cache.keys[prefix] = record
        return record

    async def _api_key(self, credential: str) -> Principal | None:
        parsed = parse_key(credential)
        if parsed is None:
            return None
        record = await self._key_record(parsed.prefix)
        if record is None or not same_hash(record.key_hash, hash_key(parsed.full)):
            return None
        if record.expires_at is not None and record.expires_at <= utcnow():
            return None
        self._recorder.note(record.id)
        return Principal(
            kind="api_key",
            subject=f"client:{record.id}",
            scopes=record.scopes,
            user_id=record.owner_user_id,
            client_id=record.id,
            node_binding=record.node_id,
        )
