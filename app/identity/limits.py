"""Login throttling per client address (in memory); per-account lockout lives in the DB.

A sliding window of failed attempts per IP: past `max_failures` within `window` seconds the
address gets 429 with Retry-After until the oldest failure leaves the window. The table is
bounded; when full, the oldest address is dropped (and counted).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque

__all__ = ["LoginThrottle"]


class LoginThrottle:
    def __init__(
        self, max_failures: int = 20, window: float = 300.0, max_addresses: int = 10_000
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self.evicted = 0

    def _recent(self, ip: str, now: float) -> deque[float]:
        times = self._failures.get(ip)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[ip]
        return times

    def retry_after(self, ip: str) -> int:
        """Seconds to wait, or 0 when this address may try again."""
        now = time.monotonic()
        times = self._recent(ip, now)
        if len(times) < self.max_failures:
            return 0
        return max(1, math.ceil(times[0] + self.window - now))

    def failed(self, ip: str) -> None:
        now = time.monotonic()
        times = self._failures.setdefault(ip, deque(maxlen=self.max_failures))
        times.append(now)
        self._failures.move_to_end(ip)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)
            self.evicted += 1

    def succeeded(self, ip: str) -> None:
        self._failures.pop(ip, None)
