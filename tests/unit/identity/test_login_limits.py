"""The in-memory login limits (limits.py) with a hand-driven clock."""

from __future__ import annotations

import pytest

from app.api.envelope import ApiError
from app.identity.limits import (
    ACCOUNT_WINDOW,
    ADDRESS_WINDOW,
    LoginLimiter,
    LoginLimits,
    LoginThrottle,
    source_key,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _refused(limiter: LoginLimiter, email: str, ip: str) -> ApiError:
    with pytest.raises(ApiError) as info:
        limiter.reserve(email, ip)
    assert info.value.status == 429
    return info.value


def test_reservations_count_before_any_result() -> None:
    clock = Clock()
    limiter = LoginLimiter(LoginLimits(per_source=5), clock)
    tickets = [limiter.reserve("a@x", "10.0.0.1") for _ in range(5)]
    assert [t.fills_pair for t in tickets] == [False] * 4 + [True]
    error = _refused(limiter, "a@x", "10.0.0.1")
    assert error.code == "account_locked" and int(error.headers["Retry-After"]) == ACCOUNT_WINDOW
    # Another source, and another email from this source, are not affected.
    limiter.reserve("a@x", "10.0.0.2")
    limiter.reserve("b@x", "10.0.0.1")
    # A reservation given back (not a failure) frees its slot.
    limiter.release(tickets[0])
    limiter.reserve("a@x", "10.0.0.1")
    clock.now += ACCOUNT_WINDOW + 1
    limiter.reserve("a@x", "10.0.0.1")
    assert limiter.refused == {"source": 1, "address": 0, "account": 0}


def test_success_clears_its_own_pair_only() -> None:
    limiter = LoginLimiter(LoginLimits(per_source=5, per_address=6), Clock())
    for _ in range(4):
        limiter.reserve("victim@x", "10.0.0.1")
    ok = limiter.reserve("mine@x", "10.0.0.1")
    limiter.succeeded(ok)
    # The address keeps its four failures against the victim: one more slot, then 429.
    limiter.reserve("victim@x", "10.0.0.1")
    assert limiter.sources.count("10.0.0.1") == 5
    limiter.reserve("other@x", "10.0.0.1")
    assert _refused(limiter, "third@x", "10.0.0.1").code == "rate_limited"
    assert _refused(limiter, "victim@x", "10.0.0.1").code == "account_locked"


def test_address_window() -> None:
    clock = Clock()
    limiter = LoginLimiter(LoginLimits(per_source=100, per_address=3), clock)
    for i in range(3):
        limiter.reserve(f"u{i}@x", "10.0.0.1")
    error = _refused(limiter, "u9@x", "10.0.0.1")
    assert int(error.headers["Retry-After"]) == ADDRESS_WINDOW
    clock.now += ADDRESS_WINDOW
    limiter.reserve("u9@x", "10.0.0.1")


def test_ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() -> None:
    assert source_key("2001:db8:1:2:aaaa::1") == source_key("2001:db8:1:2:bbbb::9")
    assert source_key("2001:db8:1:2::1") != source_key("2001:db8:1:3::1")
    assert source_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert source_key("not an address") == "not an address"
    limiter = LoginLimiter(LoginLimits(per_source=2), Clock())
    limiter.reserve("a@x", "2001:db8::1")
    limiter.reserve("a@x", "2001:db8::2")
    _refused(limiter, "a@x", "2001:db8::ffff")


def test_tables_are_bounded_and_evictions_counted() -> None:
    throttle = LoginThrottle(max_failures=3, window=60.0, max_addresses=100, clock=Clock())
    for i in range(250):
        throttle.failed(f"k{i}")
    assert len(throttle) == 100 and throttle.evicted == 150
    limiter = LoginLimiter(LoginLimits(max_keys=50), Clock())
    for i in range(200):
        limiter.reserve(f"u{i}@x", f"10.0.{i // 200}.{i % 200}")
    assert len(limiter.pairs) == 50 and len(limiter.sources) == 10
