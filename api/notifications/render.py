"""Message bodies of the external channels, rendered from the jinja2 templates under templates/.

HTML templates (`.html`) are autoescaped: titles, bodies and usernames come from users (a chat
message's preview, a shop's name) and must not become markup in an email or a Telegram message."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from api.notifications.channels import Outgoing
from api.notifications.models import NotificationType

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
BRAND = "Crypto Store"
TELEGRAM_MAX_CHARS = 4096

LABELS = {
    NotificationType.order_update.value: "Order update",
    NotificationType.new_message.value: "New message",
    NotificationType.new_follower.value: "New follower",
    NotificationType.price_alert.value: "Price alert",
    NotificationType.call.value: "Call",
    NotificationType.system.value: "Announcement",
}


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def link(base_url: str, ntype: str, data: dict[str, Any]) -> str | None:
    """Where in the store the notification leads, when it is about something with a page."""
    base = base_url.rstrip("/")
    path = {
        NotificationType.order_update.value: ("orders", "orderId"),
        NotificationType.new_message.value: ("conversations", "conversationId"),
        NotificationType.new_follower.value: ("shops", "shopId"),
        NotificationType.price_alert.value: ("products", "productId"),
    }.get(ntype)
    if path is not None and isinstance(data.get(path[1]), int):
        return f"{base}/{path[0]}/{data[path[1]]}"
    if ntype == NotificationType.call.value:
        return f"{base}/calls"
    return None


def _context(item: Outgoing, base_url: str) -> dict[str, Any]:
    return {
        "brand": BRAND,
        "title": item.title,
        "body": item.body,
        "data": item.data,
        "username": item.username,
        "label": LABELS.get(item.type, item.type),
        "link": link(base_url, item.type, item.data),
    }


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


def _template_name(kind: str, ntype: str, ext: str) -> str:
    known = ntype if ntype in LABELS else NotificationType.system.value
    return f"{kind}/{known}.{ext}"


def render_email(item: Outgoing, base_url: str) -> EmailContent:
    env, ctx = environment(), _context(item, base_url)
    return EmailContent(
        subject=f"{item.title} · {BRAND}"[:250],
        text=env.get_template(_template_name("email", item.type, "txt")).render(ctx),
        html=env.get_template(_template_name("email", item.type, "html")).render(ctx),
    )


def render_telegram(item: Outgoing, base_url: str) -> str:
    """Telegram's HTML subset (<b>, <i>, <a>), cut to the Bot API's 4096 characters."""
    ctx = _context(item, base_url)
    if len(item.body) > 3000:
        ctx["body"] = item.body[:3000] + "…"
    text = environment().get_template("telegram/message.html").render(ctx).strip()
    return text[:TELEGRAM_MAX_CHARS]
