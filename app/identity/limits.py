"""In-memory attempt limits: the login guards per (email, source) and per source address,
and the mail-sending throttle. The account-wide login ceiling lives in the database
(`login_throttle`, see tokens.py) so it holds across instances and restarts.

Logins are counted when they START: `LoginLimiter.reserve` takes a slot in both windows
before the ~130 ms password verify, synchronously on the one event loop, so a burst of
parallel guesses cannot all pass the check before the first failure is written (issue 10
item 4). The slot stays when the guess fails; a success gives back its own slot only (and
clears its own (email, source) window), never anyone else's count (item 5).

Sources are client addresses; an IPv6 client is keyed by its /64, which one host usually
holds whole. Every table is bounded: when full, the least recently used key is dropped
and counted in `evicted`.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from app.api.envelope import ApiError
from app.config import Settings, extra_int

__all__ = [
    "ACCOUNT_WINDOW",
    "ADDRESS_WINDOW",
    "LoginLimiter",
    "LoginLimits",
    "LoginThrottle",
    "LoginTicket",
    "locked_error",
    "login_limits",
    "source_key",
]

ACCOUNT_WINDOW = 15 * 60  # seconds: per (email, source), and the database's per-account window
ADDRESS_WINDOW = 5 * 60  # seconds: per source address, whatever the email

Clock = Callable[[], float]


class LoginThrottle:
    """Sliding windows of attempt times per key: past `max_failures` within `window`
    seconds the key must wait until its oldest attempt leaves the window."""

    def __init__(
        self,
        max_failures: int = 20,
        window: float = 300.0,
        max_addresses: int = 10_000,
        clock: Clock = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_addresses = max_addresses
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._failures)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def _wait(self, times: deque[float], now: float) -> int:
        if len(times) < self.max_failures:
            return 0
        return max(1, math.ceil(times[0] + self.window - now))

    def retry_after(self, key: str) -> int:
        """Seconds to wait, or 0 when this key may try again."""
        now = self._clock()
        return self._wait(self._recent(key, now), now)

    def count(self, key: str) -> int:
        return len(self._recent(key, self._clock()))

    def failed(self, key: str, at: float | None = None) -> float:
        """Record one attempt (now, or at `at`); returns its time, for `release`."""
        when = self._clock() if at is None else at
        times = self._failures.setdefault(key, deque(maxlen=self.max_failures))
        times.append(when)
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)
            self.evicted += 1
        return when

    def release(self, key: str, at: float) -> None:
        """Give back one attempt recorded at `at` (it turned out not to be a failure)."""
        times = self._failures.get(key)
        if times is None:
            return
        try:
            times.remove(at)
        except ValueError:
            return
        if not times:
            del self._failures[key]

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)


def source_key(ip: str) -> str:
    """The address a login counts against: IPv4 as is, IPv6 by its /64."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass(slots=True, frozen=True)
class LoginLimits:
    """Failed logins allowed per window (FLOE_LOGIN_MAX_PER_*; docs/identity.md)."""

    per_source: int = 5  # one email from one source, per ACCOUNT_WINDOW
    per_address: int = 20  # one source, any emails, per ADDRESS_WINDOW
    per_account: int = 50  # one email from everywhere, per ACCOUNT_WINDOW (database)
    max_keys: int = 50_000  # (email, source) pairs kept; addresses: a fifth of it


def login_limits(settings: Settings) -> LoginLimits:
    """The limits from the environment; ConfigError naming a bad variable."""
    return LoginLimits(
        per_source=extra_int(settings, "FLOE_LOGIN_MAX_PER_SOURCE", 5, low=1, high=1000),
        per_address=extra_int(settings, "FLOE_LOGIN_MAX_PER_ADDRESS", 20, low=1, high=100_000),
        per_account=extra_int(
            settings, "FLOE_LOGIN_MAX_PER_ACCOUNT", 50, low=1, high=1_000_000
        ),
    )


@dataclass(slots=True)
class LoginTicket:
    """One reserved login attempt: where it was counted, and whether it filled the
    (email, source) window (then its failure is the lockout from that source)."""

    pair: str
    source: str
    at: float
    fills_pair: bool


@dataclass(slots=True)
class LoginLimiter:
    limits: LoginLimits = field(default_factory=LoginLimits)
    clock: Clock = time.monotonic
    pairs: LoginThrottle = field(init=False)
    sources: LoginThrottle = field(init=False)
    # 429s by reason: "source" (email+source), "address", "account" (the database ceiling)
    refused: dict[str, int] = field(
        default_factory=lambda: {"source": 0, "address": 0, "account": 0}
    )

    def __post_init__(self) -> None:
        limits = self.limits
        self.pairs = LoginThrottle(
            limits.per_source, ACCOUNT_WINDOW, limits.max_keys, clock=self.clock
        )
        self.sources = LoginThrottle(
            limits.per_address, ADDRESS_WINDOW, max(1, limits.max_keys // 5), clock=self.clock
        )

    def reserve(self, email: str, ip: str) -> LoginTicket:
        """Count this attempt in both windows now, or raise 429 without counting it."""
        source = source_key(ip)
        pair = f"{email}\x00{source}"
        wait = self.pairs.retry_after(pair)
        if wait:
            self.refused["source"] += 1
            raise locked_error(wait)
        wait = self.sources.retry_after(source)
        if wait:
            self.refused["address"] += 1
            raise ApiError(
                429, "rate_limited", "Too many failed logins", headers={"Retry-After": str(wait)}
            )
        at = self.pairs.failed(pair)
        self.sources.failed(source, at)
        return LoginTicket(pair, source, at, self.pairs.count(pair) >= self.pairs.max_failures)

    def release(self, ticket: LoginTicket) -> None:
        """The attempt was not a wrong guess (refused elsewhere, or an error): uncount it."""
        self.pairs.release(ticket.pair, ticket.at)
        self.sources.release(ticket.source, ticket.at)

    def succeeded(self, ticket: LoginTicket) -> None:
        """A login succeeded: its (email, source) window starts over; the address keeps the
        failures it made against other accounts."""
        self.pairs.succeeded(ticket.pair)
        self.sources.release(ticket.source, ticket.at)


def locked_error(wait: int) -> ApiError:
    """The one answer for every account-level refusal, known email or not."""
    return ApiError(
        429,
        "account_locked",
        "Too many failed logins for this account; try again later",
        headers={"Retry-After": str(wait)},
    )
