"""Telegram through the Bot API (`sendMessage`), at a configurable base URL."""

from __future__ import annotations

import logging
import re

import httpx

from api.notifications.channels import DeliveryError, Outgoing, SendContext, describe
from api.notifications.render import render_telegram


async def send(item: Outgoing, ctx: SendContext) -> None:
    settings = ctx.settings
    if settings.telegram_bot_token is None or not settings.telegram_bot_token.get_secret_value():
        raise DeliveryError("Telegram is not configured (STORE_TELEGRAM_BOT_TOKEN)", permanent=True)
    token = settings.telegram_bot_token.get_secret_value()
    url = f"{settings.telegram_api_base.rstrip('/')}/bot{token}/sendMessage"
    body = {
        "chat_id": item.target,
        "text": render_telegram(item, settings.public_base_url),
        "parse_mode": "HTML",
        "disable_web_page_preview": True,
    }

    def scrub(text: str) -> str:  # the token is part of the URL: keep it out of last_error
        return text.replace(token, "<token>")

    try:
        resp = await ctx.http.post(url, json=body, timeout=settings.webhook_timeout_seconds)
    except httpx.TimeoutException:
        raise DeliveryError(f"Telegram timed out after {settings.webhook_timeout_seconds:g}s") from None
    except httpx.HTTPError as exc:
        raise DeliveryError(scrub(f"Telegram: {describe(exc)}")) from None
    try:
        answer = resp.json()
    except ValueError:
        answer = {}
    ok = isinstance(answer, dict) and answer.get("ok") is True
    if not 200 <= resp.status_code < 300 or not ok:
        description = answer.get("description") if isinstance(answer, dict) else None
        raise DeliveryError(scrub(f"Telegram HTTP {resp.status_code}: {description or resp.text[:200]}"))


class _RedactBotToken(logging.Filter):
    """httpx logs every request URL at INFO, and a Bot API URL carries the bot's token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any("/bot" in str(a) for a in record.args):
            record.args = tuple(
                _TOKEN_IN_PATH.sub("/bot<token>/", str(a)) if "/bot" in str(a) else a for a in record.args
            )
        return True


_TOKEN_IN_PATH = re.compile(r"/bot[^/\s]+/")
logging.getLogger("httpx").addFilter(_RedactBotToken())
