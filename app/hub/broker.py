"""The broadcast hub WebSocket streams (and later telemetry) publish through.

Each published message is serialised once; every subscriber gets the same string in a
bounded queue. A subscriber that falls behind loses its *oldest* messages (live views
want the newest) and the loss is counted per subscriber and in total, so the stream can
report it to the client (`"dropped"` in heartbeats) and `/metrics` can export it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["Hub", "Message", "Subscription"]


@dataclass(slots=True, frozen=True)
class Message:
    """One serialised message; `report_drops` splices the subscriber's drop count in."""

    text: str
    report_drops: bool = False


class Subscription:
    """A subscriber's bounded queue. Iterate with `await next_text()` until it returns None."""

    __slots__ = ("_closed", "_hub", "_queue", "_wake", "close_code", "dropped", "maxsize", "topics")

    def __init__(self, hub: Hub, topics: frozenset[str], maxsize: int) -> None:
        self._hub = hub
        self._queue: deque[Message] = deque()
        self._wake = asyncio.Event()
        self._closed = False
        self.topics = topics
        self.maxsize = maxsize
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
    dropped_total: int = 0
    _subscribers: dict[str, set[Subscription]] = field(default_factory=dict)
    _all: set[Subscription] = field(default_factory=set)

    @property
    def subscriber_count(self) -> int:
        return len(self._all)

    def subscribe(self, topics: Iterable[str], maxsize: int | None = None) -> Subscription:
        subscription = Subscription(self, frozenset(topics), maxsize or self.queue_size)
        for topic in subscription.topics:
            self._subscribers.setdefault(topic, set()).add(subscription)
        self._all.add(subscription)
        return subscription

    def topics(self, prefix: str = "") -> list[str]:
        """Topics starting with `prefix` that have subscribers now."""
        return [topic for topic, subscribers in self._subscribers.items()
                if subscribers and topic.startswith(prefix)]

    def unsubscribe(self, subscription: Subscription) -> None:
        self._all.discard(subscription)
        for topic in subscription.topics:
            subscribers = self._subscribers.get(topic)
            if subscribers is not None:
                subscribers.discard(subscription)

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
