"""Outgoing account mail (confirmation and password-reset links).

With SMTP_HOST the mail goes to that relay: SMTP_TLS=starttls (upgrade, port 587) or tls
(implicit TLS, port 465) verify the server's certificate against the system roots (or
SSL_CERT_FILE) and name; SMTP_USER/SMTP_PASSWORD authenticate, over TLS only (config.py
refuses them in clear text).

A link carries a single-use token that takes over the account, so it is logged only when
FLOE_ENV=development and SMTP_HOST is unset (the documented way to try registration locally).
Anywhere else an unsent mail is a WARNING without the link, counted in `unsent` by reason
(`floe_mail_unsent_total`).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from email.message import EmailMessage

from app.config import Settings

__all__ = ["Mailer"]

log = logging.getLogger(__name__)

SMTP_TIMEOUT = 10.0  # seconds per connection and command


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.sent: list[tuple[str, str]] = []  # (to, subject), last 100, for operators/tests
        self.delivered = 0
        self.unsent: dict[str, int] = {}  # reason ("no_smtp", "smtp_error") -> count

    def _connect(self) -> smtplib.SMTP:
        settings = self._settings
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if settings.smtp_tls == "tls":
            smtp = smtplib.SMTP_SSL(
                settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT, context=context
            )
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT)
        try:
            if settings.smtp_tls == "starttls":
                smtp.starttls(context=context)
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self._settings.smtp_from
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        with self._connect() as smtp:
            smtp.send_message(message)

    def _not_sent(self, reason: str, to: str, subject: str, why: str) -> None:
        self.unsent[reason] = self.unsent.get(reason, 0) + 1
        log.warning("mail not sent to %s (%r): %s", to, subject, why)

    async def send_link(self, to: str, subject: str, path: str, token: str) -> None:
        link = f"{path}?token={token}"
        self.sent = [*self.sent[-99:], (to, subject)]
        settings = self._settings
        if not settings.smtp_host:
            if settings.development:
                log.info(
                    "mail (FLOE_ENV=development, SMTP_HOST unset) to=%s subject=%r link=%s",
                    to,
                    subject,
                    link,
                )
                return
            self._not_sent("no_smtp", to, subject, "SMTP_HOST is not set")
            return
        try:
            await asyncio.to_thread(self._send, to, subject, f"{subject}:\n\n{link}\n")
        except (OSError, smtplib.SMTPException) as error:
            # The exception text is the server's answer or the socket's; never the message.
            self._not_sent("smtp_error", to, subject, f"{type(error).__name__}: {error}")
            return
        self.delivered += 1
