"""Identity settings: FLOE_ENV, FLOE_ADMIN_PASSWORD and SMTP_* are checked at start-up, with
one line naming the variable (and never echoing a password)."""

from __future__ import annotations

import pytest

from app.config import ConfigError, load_settings


def test_production_is_the_default() -> None:
    settings = load_settings({})
    assert settings.environment == "production" and not settings.development
    assert load_settings({"FLOE_ENV": "development"}).development


@pytest.mark.parametrize(
    ("mode", "port"), [("none", 25), ("starttls", 587), ("tls", 465)]
)
def test_smtp_port_follows_the_tls_mode(mode: str, port: int) -> None:
    assert load_settings({"SMTP_TLS": mode}).smtp_port == port
    assert load_settings({"SMTP_TLS": mode, "SMTP_PORT": "2525"}).smtp_port == 2525


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"FLOE_ENV": "prod"}, "FLOE_ENV"),
        ({"FLOE_ADMIN_PASSWORD": "too-short"}, "FLOE_ADMIN_PASSWORD"),
        ({"FLOE_ADMIN_PASSWORD": " padded-password-1 "}, "FLOE_ADMIN_PASSWORD"),
        ({"SMTP_TLS": "ssl"}, "SMTP_TLS"),
        ({"SMTP_USER": "u"}, "SMTP_PASSWORD"),
        ({"SMTP_PASSWORD": "secret-value"}, "SMTP_USER"),
        ({"SMTP_USER": "u", "SMTP_PASSWORD": "secret-value"}, "SMTP_USER"),
        ({"SMTP_PORT": "0"}, "SMTP_PORT"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    message = str(info.value)
    assert name in message and "\n" not in message
    for key in ("FLOE_ADMIN_PASSWORD", "SMTP_PASSWORD"):
        if env.get(key):
            assert env[key].strip() not in message


def test_secrets_stay_out_of_repr() -> None:
    settings = load_settings(
        {"FLOE_ADMIN_PASSWORD": "operator-password-1", "SMTP_TLS": "tls",
         "SMTP_USER": "u", "SMTP_PASSWORD": "smtp-secret-1"}
    )
    assert "operator-password-1" not in repr(settings) and "smtp-secret-1" not in repr(settings)
