from __future__ import annotations

import re
import time

from app.api import envelope


def test_timestamp_is_iso_utc_with_milliseconds_across_seconds(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    clock = iter([1_700_000_000.999, 1_700_000_001.004, 1_700_000_001.5])
    monkeypatch.setattr(envelope.time, "time", lambda: next(clock))
    stamps = [envelope.timestamp() for _ in range(3)]
    assert stamps == [
        "2023-11-14T22:13:20.999Z",
        "2023-11-14T22:13:21.004Z",
        "2023-11-14T22:13:21.500Z",
    ]


def test_timestamp_tracks_the_real_clock() -> None:
    stamp = envelope.timestamp()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
    assert stamp[:16] == time.strftime("%Y-%m-%dT%H:%M", time.gmtime()) or stamp[:13] == (
        time.strftime("%Y-%m-%dT%H", time.gmtime())
    )
