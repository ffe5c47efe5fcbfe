"""Uplink failures: every failed attempt lengthens the backoff; a persistent failure becomes a
warning once; a welcome resets."""

from __future__ import annotations

import asyncio
import logging

import pytest

from dataplane import uplink
from dataplane.uplink import UplinkClient
from tests.support.ports import free_port


def failing(client: UplinkClient, error: str) -> None:
    """One failed attempt as run() records it (counted, then logged)."""
    client._failing += 1
    client.stats.last_error = error
    client._failed()


async def test_every_failed_attempt_lengthens_the_backoff(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The real loop against a port nobody listens on: the attempts reach the
    backoff as 1, 2, 3, ..., and the third failure in a row is the one warning."""
    attempts: list[int] = []

    def record(attempt: int, initial: float, maximum: float) -> float:
        attempts.append(attempt)
        return 0.001

    monkeypatch.setattr(uplink, "backoff_delay", record)
    caplog.set_level(logging.INFO, logger="dataplane.uplink")
    client = UplinkClient(f"127.0.0.1:{free_port()}", lambda: "k", lambda: None)
    task = asyncio.create_task(client.run())
    for _ in range(500):
        if len(attempts) >= 5:
            break
        await asyncio.sleep(0.01)
    client.stop()
    await asyncio.wait_for(task, 5)
    assert attempts[:5] == [1, 2, 3, 4, 5]  # failures in a row, so the wait grows
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "3 attempts" in warnings[0].getMessage()


def test_warns_from_the_third_failure_once_per_error(caplog: pytest.LogCaptureFixture) -> None:
    client = UplinkClient("127.0.0.1:1", lambda: "", lambda: None)
    caplog.set_level(logging.INFO, logger="dataplane.uplink")
    for _ in range(5):
        failing(client, "UNAVAILABLE: certificate name mismatch")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "3 attempts" in warnings[0].getMessage()
    failing(client, "UNAVAILABLE: connection refused")  # a new error: warned again
    assert sum(r.levelno == logging.WARNING for r in caplog.records) == 2


def test_a_welcome_starts_counting_afresh(caplog: pytest.LogCaptureFixture) -> None:
    client = UplinkClient("127.0.0.1:1", lambda: "", lambda: None)
    caplog.set_level(logging.INFO, logger="dataplane.uplink")
    for _ in range(4):
        failing(client, "UNAVAILABLE: down")
    client._failing, client._warned = -1, ""  # what a Welcome does (_session)
    caplog.clear()
    failing(client, "UNAVAILABLE: down")  # the stream was lost: first failure, info only
    failing(client, "UNAVAILABLE: down")
    assert all(r.levelno == logging.INFO for r in caplog.records)
    failing(client, "UNAVAILABLE: down")
    failing(client, "UNAVAILABLE: down")
    assert sum(r.levelno == logging.WARNING for r in caplog.records) == 1
