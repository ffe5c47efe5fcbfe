"""Outgoing account mail: SMTP when SMTP_HOST is set, else the link is logged (development).

Only links carrying single-use tokens are ever logged — never passwords.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from email.message import EmailMessage

from app.config import Settings

__all__ = ["Mailer"]

log = logging.getLogger(__name__)


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.sent: list[tuple[str, str]] = []  # (to, subject), last 100, for operators/tests

    def _send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self._settings.smtp_from
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        with smtplib.SMTP(self._settings.smtp_host, self._settings.smtp_port, timeout=10) as smtp:
            smtp.send_message(message)

    async def send_link(self, to: str, subject: str, path: str, token: str) -> None:
        link = f"{path}?token={token}"
        self.sent = [*self.sent[-99:], (to, subject)]
        if not self._settings.smtp_host:
            log.info(
                "mail (development, SMTP_HOST unset) to=%s subject=%r link=%s", to, subject, link
            )
            return
        try:
            await asyncio.to_thread(self._send, to, subject, f"{subject}:\n\n{link}\n")
        except (OSError, smtplib.SMTPException):
            log.warning("could not send mail to %s", to, exc_info=True)
