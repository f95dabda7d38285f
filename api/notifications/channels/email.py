"""Email over SMTP: a multipart/alternative message (plain text, then HTML) per notification.

smtplib is blocking, so each message is sent from a worker thread; one connection per message keeps
a failure confined to its own delivery."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from api.core.settings import Settings
from api.notifications.channels import DeliveryError, Outgoing, SendContext, describe
from api.notifications.render import render_email


def configured(settings: Settings) -> bool:
    return bool(settings.smtp_host)


def build_message(item: Outgoing, ctx: SendContext) -> EmailMessage:
    content = render_email(item, ctx.settings.public_base_url)
    msg = EmailMessage()
    msg["Subject"] = content.subject
    msg["From"] = ctx.settings.smtp_from
    msg["To"] = item.target
    msg["Date"] = format_datetime(ctx.now)
    # Stable per delivery, so a retried message that did arrive is recognisable as the same one.
    domain = ctx.settings.smtp_from.rsplit("@", 1)[-1].strip(" >") or "localhost"
    msg["Message-ID"] = make_msgid(idstring=f"delivery-{item.id}", domain=domain)
    msg["X-Store-Notification-Type"] = item.type
    msg.set_content(content.text)
    msg.add_alternative(content.html, subtype="html")
    return msg


def _send_blocking(settings: Settings, msg: EmailMessage) -> None:
    assert settings.smtp_host is not None
    with smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=settings.webhook_timeout_seconds
    ) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            smtp.login(settings.smtp_username, password)
        smtp.send_message(msg)


async def send(item: Outgoing, ctx: SendContext) -> None:
    if not configured(ctx.settings):
        raise DeliveryError("SMTP is not configured (STORE_SMTP_HOST)", permanent=True)
    msg = build_message(item, ctx)
    try:
        await asyncio.to_thread(_send_blocking, ctx.settings, msg)
    except smtplib.SMTPRecipientsRefused as exc:
        # The server says this address does not exist: retrying will not change that.
        raise DeliveryError(f"recipient refused: {describe(exc)}", permanent=True) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP: {describe(exc)}") from None
