"""The capture knobs (snap length, dropped-frame sampling, zero-copy, ring size): flags win
over FLOE_* variables, and a bad value is one configuration error naming where it came from."""

from __future__ import annotations

import pytest

from app.config import ConfigError, load_settings
from dataplane.config import CaptureConfig, load_capture_config


def test_defaults() -> None:
    assert load_capture_config(load_settings({})) == CaptureConfig(
        snaplen=128, drop_sample_n=1, drop_rate_cap=20_000, zero_copy="off", ring_bytes=1 << 24)


def test_environment_then_flags() -> None:
    settings = load_settings({"FLOE_SNAPLEN": "64", "FLOE_DROP_SAMPLE_N": "10",
                              "FLOE_DROP_RATE_CAP": "0", "FLOE_XSK_ZEROCOPY": "try",
                              "FLOE_RING_BYTES": "65536"})
    assert load_capture_config(settings) == CaptureConfig(64, 10, 0, "try", 65536)
    assert load_capture_config(settings, snaplen=256, zero_copy="require").snaplen == 256
    assert load_capture_config(settings, zero_copy="require").zero_copy == "require"


@pytest.mark.parametrize(("env", "flags", "named"), [
    ({"FLOE_SNAPLEN": "300"}, {}, "FLOE_SNAPLEN"),
    ({"FLOE_SNAPLEN": "big"}, {}, "FLOE_SNAPLEN"),
    ({}, {"snaplen": 8}, "--snaplen"),
    ({"FLOE_DROP_SAMPLE_N": "-1"}, {}, "FLOE_DROP_SAMPLE_N"),
    ({}, {"drop_rate_cap": -5}, "--drop-rate-cap"),
    ({"FLOE_XSK_ZEROCOPY": "maybe"}, {}, "FLOE_XSK_ZEROCOPY"),
    ({"FLOE_RING_BYTES": "100000"}, {}, "FLOE_RING_BYTES"),  # not a power of two
    ({"FLOE_RING_BYTES": "1024"}, {}, "FLOE_RING_BYTES"),  # below 64 KiB
])
def test_bad_values_name_their_source(env: dict[str, str], flags: dict[str, int],
                                      named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_capture_config(load_settings(env), **flags)  # type: ignore[arg-type]
