"""Cross-instance cache invalidation over Redis pub/sub (when REDIS_URL is set).

Every IdentityCache change made by one control-plane instance (user scopes/roles/stamp,
API key revoke/rotate, revoked refresh family) is published on a channel derived from
SECRET_KEY (instances of one deployment share it; other deployments and tests do not
collide). Subscribers apply it to their own cache. Publishing goes through a bounded queue
(drops are counted); after a (re)subscription each instance drops its user and key caches
and reloads revoked families, because messages may have been missed while disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.identity.cache import IdentityCache
from app.tasks import cancel_and_wait

__all__ = ["InvalidationBus", "channel_for"]

log = logging.getLogger(__name__)

_RETRY_MAX = 5.0


def channel_for(secret: str) -> str:
    return "floe:identity:" + hashlib.sha256(b"channel:" + secret.encode()).hexdigest()[:16]


class InvalidationBus:
    def __init__(
        self,
        url: str,
        secret: str,
        cache: IdentityCache,
        resync: Callable[[], Awaitable[None]],
        queue_size: int = 1024,
    ) -> None:
        self._url = url
        self.channel = channel_for(secret)
        self._cache = cache
        self._resync = resync
        self._origin = secrets.token_hex(8)
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=queue_size)
        self._tasks: list[asyncio.Task[None]] = []
        self._resyncing: asyncio.Future[None] | None = None  # after a drop-all from a peer
        self._redis: aioredis.Redis | None = None
        self.subscribed = asyncio.Event()
        self.stats = {"published": 0, "collapsed": 0, "applied": 0, "resyncs": 0}

    # Called synchronously by IdentityCache after each local change.
    def publish(self, event: dict[str, Any]) -> None:
        message = orjson.dumps({**event, "o": self._origin})
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            # Losing one invalidation could keep a revoked key valid elsewhere: replace the
            # whole backlog by one "drop everything" that supersedes it.
            while not self._queue.empty():
                self._queue.get_nowait()
                self._queue.task_done()
            self._queue.put_nowait(orjson.dumps({"k": "all", "o": self._origin}))
            self.stats["collapsed"] += 1
            log.warning("identity invalidation: backlog full, sending one drop-all instead")

    def apply(self, event: dict[str, Any]) -> None:
        kind = event.get("k")
        cache = self._cache
        if kind == "user" and isinstance(event.get("id"), int):
            cache.forget_user(event["id"], publish=False)
        elif kind == "users":
            cache.forget_all_users(publish=False)
        elif kind == "key" and isinstance(event.get("p"), str):
            cache.forget_key(event["p"], publish=False)
        elif kind == "all":  # the sender's backlog overflowed: trust nothing cached
            cache.drop_all()  # now, before any later event is applied
            if self._resyncing is None or self._resyncing.done():
                self._resyncing = asyncio.ensure_future(self._counted_resync())
        elif kind == "family" and isinstance(event.get("f"), str):
            cache.revoke_family(event["f"], float(event.get("u", 0)), publish=False)
        else:
            return
        self.stats["applied"] += 1

    async def _counted_resync(self) -> None:
        await self._resync()
        self.stats["resyncs"] += 1

    async def _publisher(self) -> None:
        while True:
            message = await self._queue.get()
            while True:
                try:
                    assert self._redis is not None
                    await self._redis.publish(self.channel, message)
                    self.stats["published"] += 1
                    self._queue.task_done()
                    break
                except (RedisError, OSError):
                    log.warning("identity invalidation: publish failed, retrying", exc_info=True)
                    await asyncio.sleep(1.0)

    async def _subscriber(self) -> None:
        delay = 0.2
        while True:
            try:
                assert self._redis is not None
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(self.channel)
                # Anything may have changed while we were not listening.
                self._cache.drop_all()
                await self._counted_resync()
                self.subscribed.set()
                delay = 0.2
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        event = orjson.loads(message["data"])
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(event, dict) and event.get("o") != self._origin:
                        self.apply(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.subscribed.clear()
                log.warning("identity invalidation: subscription lost, retrying", exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)

    def start(self) -> None:
        self._redis = aioredis.from_url(self._url)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._subscriber()), loop.create_task(self._publisher())]

    async def stop(self) -> None:
        # Let queued invalidations (and the one being published) leave, for at most 1 s.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), 1.0)
        await cancel_and_wait([*self._tasks, self._resyncing])
        self._tasks = []
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
