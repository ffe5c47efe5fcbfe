"""Uplink failure reporting: a persistent failure becomes a warning once, a welcome resets."""

from __future__ import annotations

import logging

import pytest

from dataplane.uplink import UplinkClient


def failing(client: UplinkClient, error: str) -> None:
    client.stats.last_error = error
    client._failed()


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
