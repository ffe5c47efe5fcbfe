"""The grace period the IPv6 index waits for is the kernel's (membarrier), not a guess."""

from __future__ import annotations

import platform
import time

import pytest

from dataplane.bpf import rcu


def test_the_wait_is_an_rcu_grace_period_here(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"fell back to sleeping {seconds} s")

    monkeypatch.setattr(time, "sleep", no_sleep)
    started = time.monotonic()
    rcu.wait_for_programs_in_flight()
    assert time.monotonic() - started < 1.0


def test_without_membarrier_it_sleeps_past_any_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(platform, "machine", lambda: "unknown-arch")
    monkeypatch.setattr(time, "sleep", slept.append)
    rcu.wait_for_programs_in_flight()
    assert slept == [rcu.FALLBACK_SECONDS]
