from __future__ import annotations

import pytest

from app.config import ConfigError, load_settings


def test_defaults_match_the_brief() -> None:
    settings = load_settings({})
    assert (settings.http_port, settings.https_port, settings.grpc_port, settings.metrics_port) == (
        8080,
        8443,
        50051,
        9090,
    )
    assert settings.db_type == "sqlite"
    assert settings.http1_enabled and settings.http2_enabled and settings.grpc_enabled
    assert settings.ingest_takeover_grace == 30.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HTTP_PORT", "eighty"),
        ("HTTP_PORT", "70000"),
        ("HTTP3_ENABLED", "maybe"),
        ("DB_TYPE", "oracle"),
        ("DB_POOL_SIZE", "0"),
        ("DB_RETRY_DELAY", "-1"),
        ("INGEST_TAKEOVER_GRACE", "soon"),
        ("INGEST_TAKEOVER_GRACE", "0.5"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({name: value})
    assert name in str(info.value)
    assert "\n" not in str(info.value)
