"""Notification e-mail through the SMTP server of the settings (smtp_*, notify_to).

Texts name files, referentienummers and periods only, never file contents (no personal data
leaves by e-mail). Without smtp_host or recipients nothing is sent and the caller is told so.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Final

from ggk_ebms.config import Settings
from ggk_ebms.errors import ConfigError, GgkEbmsError

TIMEOUT_SECONDS: Final = 30.0


class MailError(GgkEbmsError):
    """The SMTP server refused or could not be reached."""


def mail_configured(settings: Settings) -> bool:
    return bool(settings.smtp_host and settings.notify_to)


def send_mail(settings: Settings, subject: str, body: str) -> bool:
    """Send one notification to every ``notify_to`` address; False when mail is not configured."""
    if not mail_configured(settings):
        return False
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(settings.notify_to)
    message["Subject"] = subject
    message.set_content(body)
    password = None
    if settings.smtp_password_file is not None:
        try:
            password = settings.smtp_password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"smtp_password_file {settings.smtp_password_file}: {exc}") from None
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_SECONDS) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, password or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"e-mail via {settings.smtp_host}:{settings.smtp_port} failed: {exc}") from exc
    return True
