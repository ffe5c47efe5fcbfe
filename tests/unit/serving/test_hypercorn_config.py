"""Env toggles → hypercorn listeners (what gets bound, ALPN)."""

from __future__ import annotations

from app.serving.run import build_hypercorn_config


def test_everything_on(make_settings) -> None:  # type: ignore[no-untyped-def]
    config = build_hypercorn_config(
        make_settings(HTTP3_ENABLED="true", HTTP_PORT="8080", HTTPS_PORT="8443")
    )
    assert config.bind == ["0.0.0.0:8443"]
    assert config.insecure_bind == ["0.0.0.0:8080"]
    assert config.quic_bind == ["0.0.0.0:8443"]
    assert config.alpn_protocols == ["h2", "http/1.1"]
    assert config.keep_alive_max_requests == 100_000
    assert config.keep_alive_timeout == 20.0  # past httpx's 5 s pool expiry: no close race
    assert config.backlog == 4096  # hypercorn's 100 overflowed at 1,000 connecting clients


def test_http3_off_binds_no_udp(make_settings) -> None:  # type: ignore[no-untyped-def]
    config = build_hypercorn_config(make_settings(HTTP3_ENABLED="false"))
    assert config.quic_bind == []


def test_http2_off_restricts_alpn(make_settings) -> None:  # type: ignore[no-untyped-def]
    config = build_hypercorn_config(
        make_settings(HTTP2_ENABLED="false", KEEP_ALIVE_MAX_REQUESTS="7", KEEP_ALIVE_TIMEOUT="2.5")
    )
    assert config.alpn_protocols == ["http/1.1"]
    assert config.keep_alive_max_requests == 7
    assert config.keep_alive_timeout == 2.5


def test_https_port_zero_serves_cleartext_only(make_settings) -> None:  # type: ignore[no-untyped-def]
    config = build_hypercorn_config(make_settings(HTTPS_PORT="0", HTTP_PORT="8081"))
    assert config.bind == ["0.0.0.0:8081"]
    assert config.quic_bind == [] and config.certfile is None
