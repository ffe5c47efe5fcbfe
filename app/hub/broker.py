"""The broadcast hub WebSocket streams (and later telemetry) publish through.

Each published message is serialised once; every subscriber gets the same string in a
bounded queue. A subscriber that falls behind loses its *oldest* messages (live views
want the newest) and the loss is counted per subscriber and in total, so the stream can
report it to the client (`"dropped"` in heartbeats) and `/metrics` can export it.

Subscribers are bounded too: at most `max_subscribers` in all and `max_per_owner` per owner
(the stream passes the caller's principal), so one credential cannot hold every slot.
`subscribe` past a bound raises `HubFull`; refusals are counted by bound in `refused`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["Hub", "HubFull", "Message", "Subscription"]


class HubFull(Exception):
    """A subscription refused by a bound: `bound` is "total" or "owner"."""

    def __init__(self, bound: str, limit: int) -> None:
        super().__init__(f"{bound} subscriptions at the limit of {limit}")
        self.bound = bound
        self.limit = limit


@dataclass(slots=True, frozen=True)
class Message:
    """One serialised message; `report_drops` splices the subscriber's drop count in."""

    text: str
    report_drops: bool = False


class Subscription:
    """A subscriber's bounded queue. Iterate with `await next_text()` until it returns None."""

    __slots__ = ("_closed", "_hub", "_queue", "_wake", "close_code", "dropped", "maxsize", "owner",
                 "topics")

    def __init__(self, hub: Hub, topics: frozenset[str], maxsize: int, owner: str = "") -> None:
        self._hub = hub
        self._queue: deque[Message] = deque()
        self._wake = asyncio.Event()
        self._closed = False
        self.topics = topics
        self.maxsize = maxsize
        self.owner = owner
        self.dropped = 0
        self.close_code: int | None = None

    def offer(self, message: Message) -> None:
        """Queue without waiting; past the bound the oldest message is dropped and counted."""
        if self._closed:
            return
        if len(self._queue) >= self.maxsize:
            self._queue.popleft()
            self.dropped += 1
            self._hub.dropped_total += 1
        self._queue.append(message)
        self._wake.set()

    async def next_text(self) -> str | None:
        """The next message as text, or None once the subscription is closed and drained."""
        while not self._queue:
            if self._closed:
                return None
            self._wake.clear()
            await self._wake.wait()
        message = self._queue.popleft()
        if message.report_drops:
            # `{"…":…}` → `{"…":…,"dropped":N}`: no second serialisation per subscriber.
            return f'{message.text[:-1]},"dropped":{self.dropped}}}'
        return message.text

    def close(self, code: int = 1000) -> None:
        """Stop delivery; the reader sees None after the queue drains and closes with `code`."""
        if self.close_code is None:
            self.close_code = code
        self._closed = True
        self._wake.set()
        self._hub.unsubscribe(self)


@dataclass(slots=True)
class Hub:
    """Topic → subscribers. All methods run on the event loop thread."""

    queue_size: int = 64
    max_subscribers: int = 0  # 0: no bound
    max_per_owner: int = 0  # 0: no bound
    dropped_total: int = 0
    refused: dict[str, int] = field(default_factory=lambda: {"total": 0, "owner": 0})
    _subscribers: dict[str, set[Subscription]] = field(default_factory=dict)
    _all: set[Subscription] = field(default_factory=set)
    _owners: dict[str, int] = field(default_factory=dict)  # owner -> open subscriptions

    @property
    def subscriber_count(self) -> int:
        return len(self._all)

    def subscribe(self, topics: Iterable[str], maxsize: int | None = None,
                  owner: str = "") -> Subscription:
        """A new subscription; `HubFull` (counted) when it would pass a bound."""
        if self.max_subscribers and len(self._all) >= self.max_subscribers:
            self.refused["total"] += 1
            raise HubFull("total", self.max_subscribers)
        held = self._owners.get(owner, 0)
        if owner and self.max_per_owner and held >= self.max_per_owner:
            self.refused["owner"] += 1
            raise HubFull("owner", self.max_per_owner)
        subscription = Subscription(self, frozenset(topics), maxsize or self.queue_size, owner)
        for topic in subscription.topics:
            self._subscribers.setdefault(topic, set()).add(subscription)
        self._all.add(subscription)
        if owner:
            self._owners[owner] = held + 1
        return subscription

    def held_by(self, owner: str) -> int:
        """Open subscriptions of `owner`."""
        return self._owners.get(owner, 0)

    def topics(self, prefix: str = "") -> list[str]:
        """Topics starting with `prefix` that have subscribers now."""
        return [topic for topic, subscribers in self._subscribers.items()
                if subscribers and topic.startswith(prefix)]

    def unsubscribe(self, subscription: Subscription) -> None:
        """Idempotent (a subscription may be closed from several places)."""
        if subscription not in self._all:
            return
        self._all.discard(subscription)
        for topic in subscription.topics:
            subscribers = self._subscribers.get(topic)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:  # per-node-set topics come and go with their streams
                    del self._subscribers[topic]
        owner = subscription.owner
        if owner:
            left = self._owners.get(owner, 0) - 1
            if left > 0:
                self._owners[owner] = left
            else:
                self._owners.pop(owner, None)

    def publish(
        self, payload: dict[str, Any], topic: str | None = None, *, report_drops: bool = False
    ) -> int:
        """Serialise once and offer to every subscriber of `topic` (default: payload["type"]).

        Returns how many subscribers got it. With `report_drops` each subscriber's copy ends
        with its own `"dropped": N` (spliced into the text, not re-serialised).
        """
        subscribers = self._subscribers.get(topic or str(payload.get("type", "")))
        if not subscribers:
            return 0
        message = Message(orjson.dumps(payload).decode(), report_drops)
        for subscription in subscribers:
            subscription.offer(message)
        return len(subscribers)

    def close_all(self, code: int = 1001) -> None:
        """Close every subscription (shutdown: 1001 going away)."""
        for subscription in list(self._all):
            subscription.close(code)
