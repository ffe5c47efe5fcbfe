"""Account mail (issue 10 item 20): reset/confirm tokens never reach the logs outside
development, and mail goes out over a real SMTP server (aiosmtpd in this process) with
STARTTLS or implicit TLS and authentication."""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from app.config import Settings
from app.identity.mailer import Mailer
from app.serving.tls import ensure_dev_certificate
from tests.integration.identity.attacker import ADMIN, from_source, login, start_server
from tests.support.ports import free_port

# Implicit TLS: aiosmtpd warns about AUTH without STARTTLS although the whole port is TLS.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Requiring AUTH while not requiring TLS:UserWarning"
)

USER, PASSWORD = "floe-mailer", "smtp-secret-1"
LINK = re.compile(r"token=([A-Za-z0-9_.\-]+)")


@dataclass(slots=True)
class Inbox:
    messages: list[bytes] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(bytes(envelope.content))
        self.arrived.set()
        return "250 OK"


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode(), auth_data.password.decode()
    ) == (USER, PASSWORD)
    return AuthResult(success=ok, handled=False)


@dataclass(slots=True)
class SmtpServer:
    port: int
    cert: Path
    inbox: Inbox


@pytest.fixture(params=["starttls", "tls"])
def smtp(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 that demands TLS before AUTH and AUTH before mail."""
    cert, key = ensure_dev_certificate(tmp_path / "smtp")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    port = free_port()
    options: dict[str, Any] = {"authenticator": _authenticator, "auth_required": True}
    if request.param == "starttls":
        options.update(tls_context=context, require_starttls=True)
    else:
        # The whole port is TLS; aiosmtpd only counts STARTTLS as TLS for its AUTH check.
        options.update(ssl_context=context, auth_require_tls=False)
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield SmtpServer(port, cert, inbox)
    finally:
        controller.stop()


def _smtp_env(smtp: SmtpServer, mode: str, password: str = PASSWORD) -> dict[str, str]:
    return {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_TLS": mode,
        "SMTP_USER": USER,
        "SMTP_PASSWORD": password,
        "SMTP_FROM": "floe@example.com",
        "SSL_CERT_FILE": str(smtp.cert),  # how an operator trusts a private CA, too
    }


async def test_production_without_smtp_logs_no_token() -> None:
    env = {
        "FLOE_ENV": "production",
        "FLOE_ADMIN_PASSWORD": "operator-password-1",
        "METRICS_ENABLED": "true",
    }
    with start_server(env) as server:
        async with from_source(server) as client:
            response = await client.post(
                "/api/v2/auth/password-reset", json={"email": ADMIN[0]}
            )
            assert response.status_code == 202
            # The 202 comes after the mailer has run (and logged): the log is complete here.
            output = server.output()
            assert "token=" not in output and "/password-reset/confirm" not in output
            assert "mail not sent" in output
            token = (await login(client, ADMIN[0], "operator-password-1")).body["data"]
            metrics = await client.get(
                "/metrics", headers={"Authorization": f"Bearer {token['access_token']}"}
            )
            assert 'floe_mail_unsent_total{reason="no_smtp"} 1.0' in metrics.text


async def test_reset_mail_over_real_smtp(request: pytest.FixtureRequest, smtp: SmtpServer) -> None:
    mode = request.node.callspec.params["smtp"]
    env = {
        "FLOE_ENV": "production",
        "FLOE_ADMIN_PASSWORD": "operator-password-1",
        **_smtp_env(smtp, mode),
    }
    with start_server(env) as server:
        async with from_source(server) as client:
            response = await client.post(
                "/api/v2/auth/password-reset", json={"email": ADMIN[0]}
            )
            assert response.status_code == 202
            assert await asyncio.to_thread(smtp.inbox.arrived.wait, 20.0)
            mail = message_from_bytes(smtp.inbox.messages[0])
            assert mail["From"] == "floe@example.com" and mail["To"] == ADMIN[0]
            match = LINK.search(mail.get_payload(decode=True).decode())  # type: ignore[union-attr]
            assert match
            token = match.group(1)
            response = await client.post(
                "/api/v2/auth/password-reset/confirm",
                json={"token": token, "password": "after-reset-password-1"},
            )
            assert response.status_code == 200, response.text
            answer = await login(client, ADMIN[0], "after-reset-password-1")
            assert answer.status == 200 and answer.body["data"]["password_change_required"] is False
        assert token not in server.output()


async def test_refused_smtp_login_is_a_warning_without_the_token(
    make_settings: Callable[..., Settings],
    smtp: SmtpServer,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mode = request.node.callspec.params["smtp"]
    good_env = {k: v for k, v in _smtp_env(smtp, mode).items() if k != "SSL_CERT_FILE"}
    # A certificate the system does not trust: nothing is sent, not even the password.
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    untrusting = Mailer(make_settings(FLOE_ENV="production", **good_env))
    await untrusting.send_link(ADMIN[0], "Reset", "/x", "tok-000")
    assert untrusting.unsent == {"smtp_error": 1} and not smtp.inbox.messages
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp.cert))
    settings = make_settings(FLOE_ENV="production", **{
        k: v for k, v in _smtp_env(smtp, mode, "wrong-password").items() if k != "SSL_CERT_FILE"
    })
    mailer = Mailer(settings)
    await mailer.send_link(ADMIN[0], "Reset", "/api/v2/auth/password-reset/confirm", "tok-123")
    assert not smtp.inbox.messages
    assert mailer.unsent == {"smtp_error": 1}
    assert "tok-123" not in caplog.text and "mail not sent" in caplog.text
    good = Mailer(make_settings(FLOE_ENV="production", **good_env))
    await good.send_link(ADMIN[0], "Reset", "/api/v2/auth/password-reset/confirm", "tok-456")
    assert smtp.inbox.arrived.is_set() and b"tok-456" in smtp.inbox.messages[0]
    assert "tok-456" not in caplog.text
