"""Email over SMTP: a multipart/alternative message (plain text, then HTML) per notification, and the
scheduled reports' messages (the same body parts, then the report's files as attachments).

smtplib is blocking, so each message is sent from a worker thread; one connection per message keeps
a failure confined to its own delivery."""

from __future__ import annotations

import asyncio
import html
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
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
    msg["Message-ID"] = make_msgid(idstring=f"delivery-{item.id}", domain=_domain(ctx.settings))
    msg["X-Store-Notification-Type"] = item.type
    msg.set_content(content.text)
    msg.add_alternative(content.html, subtype="html")
    return msg


def _domain(settings: Settings) -> str:
    return settings.smtp_from.rsplit("@", 1)[-1].strip(" >") or "localhost"


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
    await asyncio.to_thread(send_blocking, ctx.settings, build_message(item, ctx))


# --- reports with attachments (pipelines/reports) ---------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    media_type: str  # e.g. application/pdf; parameters (`; charset=utf-8`) are allowed


@dataclass(frozen=True)
class MetricLine:
    label: str
    value: str  # as the report shows it
    previous: str | None = None  # the previous period's, as shown


@dataclass(frozen=True)
class ReportEmail:
    subject: str
    title: str
    subtitle: str  # what the report covers
    freshness: str
    metrics: Sequence[MetricLine]
    attachments: Sequence[Attachment]
    notes: Sequence[str] = ()


def _report_text(mail: ReportEmail) -> str:
    lines = [mail.title, mail.subtitle, ""]
    for m in mail.metrics:
        lines.append(f"- {m.label}: {m.value}" + (f" (previous period: {m.previous})" if m.previous else ""))
    lines += ["", *mail.notes, *([""] if mail.notes else []), mail.freshness, ""]
    lines.append("Attached: " + ", ".join(a.filename for a in mail.attachments))
    return "\n".join(lines) + "\n"


def _report_html(mail: ReportEmail) -> str:
    e = html.escape
    rows = "".join(
        f'<tr><td>{e(m.label)}</td><td style="text-align:right"><b>{e(m.value)}</b></td>'
        f'<td style="color:#666">{e(m.previous or "")}</td></tr>'
        for m in mail.metrics
    )
    notes = "".join(f"<p>{e(n)}</p>" for n in mail.notes)
    files = "".join(f"<li>{e(a.filename)}</li>" for a in mail.attachments)
    return (
        f"<html><body><h2>{e(mail.title)}</h2><p>{e(mail.subtitle)}</p>"
        '<table cellpadding="4"><tr><th align="left">Metric</th><th>Value</th>'
        f'<th align="left">Previous period</th></tr>{rows}</table>{notes}'
        f'<p style="color:#666">{e(mail.freshness)}</p><p>Attached:</p><ul>{files}</ul>'
        "</body></html>\n"
    )


def build_report_message(
    settings: Settings, recipients: Sequence[str], mail: ReportEmail, now: datetime, key: str
) -> EmailMessage:
    """One message to every recipient: the report's headline numbers as text and HTML, then each file
    attached with its MIME type. `key` makes the Message-ID: the same key, the same message."""
    msg = EmailMessage()
    msg["Subject"] = mail.subject
    msg["From"] = settings.smtp_from
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(idstring=f"report-{key}", domain=_domain(settings))
    msg["X-Store-Notification-Type"] = "report"
    msg.set_content(_report_text(mail))
    msg.add_alternative(_report_html(mail), subtype="html")
    for a in mail.attachments:
        maintype, _, subtype = a.media_type.split(";", 1)[0].strip().partition("/")
        msg.add_attachment(
            a.content, maintype=maintype, subtype=subtype or "octet-stream", filename=a.filename
        )
    return msg


def send_blocking(settings: Settings, msg: EmailMessage) -> None:
    """Sends `msg` now, in this thread, over the notification hub's SMTP settings. Raises DeliveryError
    (permanent when SMTP is not configured or every recipient is refused)."""
    if not configured(settings):
        raise DeliveryError("SMTP is not configured (STORE_SMTP_HOST)", permanent=True)
    try:
        _send_blocking(settings, msg)
    except smtplib.SMTPRecipientsRefused as exc:
        # The server says this address does not exist: retrying will not change that.
        raise DeliveryError(f"recipient refused: {describe(exc)}", permanent=True) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP: {describe(exc)}") from None
