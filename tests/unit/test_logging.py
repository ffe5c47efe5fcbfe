from __future__ import annotations

import io
import json
import logging

import pytest

from app.logging import JsonFormatter, correlation_id, setup_logging, verbosity_to_level


@pytest.mark.parametrize(
    ("verbosity", "level"),
    [
        (0, logging.INFO),
        (1, logging.WARNING),
        (2, logging.INFO),
        (3, logging.DEBUG),
        (5, logging.DEBUG),
    ],
)
def test_verbosity_flags(verbosity: int, level: int) -> None:
    assert verbosity_to_level(verbosity) == level


def test_json_lines_carry_the_correlation_id() -> None:
    setup_logging(2, json_lines=True)
    root = logging.getLogger()
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler.formatter, JsonFormatter)
    handler.setStream(stream)  # type: ignore[attr-defined]
    token = correlation_id.set("abc123")
    try:
        logging.getLogger("floe.test").info("hello %s", "world")
    finally:
        correlation_id.reset(token)
    record = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert record["msg"] == "hello world"
    assert record["correlation_id"] == "abc123"
    assert record["level"] == "info"


def test_fresh_correlation_ids_are_unique_16_hex() -> None:
    from app.logging import new_correlation_id

    ids = [new_correlation_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
