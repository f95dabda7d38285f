"""Notification delivery to email, webhooks and Telegram through the durable queue.

Everything is real: an aiosmtpd SMTP server, HTTP receivers on loopback (a webhook endpoint and a
Bot API-shaped Telegram stand-in), the worker's own pass (`deliver_due`) driven by the ManualClock,
and once the worker the app's lifespan starts by itself."""

from __future__ import annotations

import asyncio
import email
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from api.core.settings import Settings
from api.db.engine import Store
from api.main import create_app
from api.notifications.delivery import (
    DeliveryReport,
    claim_due,
    deliver_due,
    http_client,
    lease_seconds,
)
from api.notifications.models import NotificationDelivery, NotificationType
from api.notifications.service import notify
from api.outbox.service import Uow
from tests.helpers import Actor, Api, data, error

TOKEN = "123456:TEST-bot-token"
CHANNELS_URL = "/api/notifications/channels"
PREFS_URL = "/api/notifications/preferences"
STATS_URL = "/api/notifications/stats"


# --- real receivers --------------------------------------------------------------------------------


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.port = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        out = []
        for env in self.envelopes:
            raw = env.original_content or b""
            msg = email.message_from_bytes(raw, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An HTTP server on loopback that records each POST and answers with the next scripted status
    (then `default`)."""

    def __init__(self, reply: bytes = b'{"received": true}') -> None:
        self.statuses: list[int] = []
        self.default = 200
        self.reply = reply
        self.requests: list[Received] = []
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    receiver.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(receiver.reply)))
                self.end_headers()
                self.wfile.write(receiver.reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    handler = Inbox()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        handler.port = sock.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    controller.stop()


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def bot() -> Iterator[Receiver]:
    r = Receiver(reply=b'{"ok": true, "result": {"message_id": 1}}')
    yield r
    r.close()


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def settings(settings: Settings, inbox: Inbox, bot: Receiver, overrides: dict[str, Any]) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": inbox.port,
            "smtp_from": "Crypto Store <no-reply@store.test>",
            "webhook_allow_private": True,  # the receivers live on loopback
            "webhook_timeout_seconds": 3.0,
            "telegram_api_base": bot.url,
            "telegram_bot_token": SecretStr(TOKEN),
            "delivery_poll_seconds": 0,  # passes are run by the tests, on the test clock
            "delivery_backoff_seconds": 10.0,
            "delivery_max_attempts": 3,
            "public_base_url": "https://store.test",
            **overrides,
        }
    )


# --- helpers -----------------------------------------------------------------------------------------


def deliver(api: Api, settings: Settings) -> DeliveryReport:
    """One pass of the worker at the test clock's time."""

    async def run() -> DeliveryReport:
        async with http_client(settings) as http:
            return await deliver_due(api.store, settings, api.clock.now(), http)

    return asyncio.run(run())


def deliveries(api: Api, **where: Any) -> list[NotificationDelivery]:
    with api.store.read() as db:
        q = select(NotificationDelivery).filter_by(**where).order_by(NotificationDelivery.id)
        return list(db.execute(q).scalars())


def follow(api: Api, fan: Actor, shop_id: int) -> None:
    assert data(api.client.post(f"/api/shops/{shop_id}/follow", headers=fan.headers))["following"] is True


def set_channels(api: Api, user: Actor, status: int = 200, **body: Any) -> Any:
    resp = api.client.put(CHANNELS_URL, json=body, headers=user.headers)
    return data(resp, status) if status < 400 else error(resp, status)


def relogin(api: Api, actor: Actor) -> Actor:
    tokens = api.login(actor.email)
    return replace(actor, access_token=tokens["accessToken"], refresh_token=tokens["refreshToken"])


def body_parts(msg: EmailMessage) -> tuple[str, str]:
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


@pytest.fixture
def shop_owner(api: Api) -> tuple[Actor, dict[str, Any]]:
    owner = api.user("seller")
    return owner, api.shop(owner, name="Satoshi Hardware")


# --- email ---------------------------------------------------------------------------------------------


def test_follow_emails_the_owner_html_and_text(
    api: Api, settings: Settings, inbox: Inbox, shop_owner
) -> None:
    owner, shop = shop_owner
    fan = api.user()
    follow(api, fan, shop["id"])
    [row] = deliveries(api)
    assert (row.channel, row.target, row.status, row.attempts) == ("email", owner.email, "pending", 0)
    assert inbox.envelopes == []  # nothing leaves before the worker runs

    report = deliver(api, settings)
    assert (report.claimed, report.delivered) == (1, 1)
    [env] = inbox.envelopes
    assert env.rcpt_tos == [owner.email] and env.mail_from == "no-reply@store.test"
    [msg] = inbox.messages()
    assert msg["Subject"] == "New follower · Crypto Store"
    assert msg.get_content_type() == "multipart/alternative"
    text, html = body_parts(msg)
    assert f"{fan.username} now follows Satoshi Hardware" in text
    assert f"https://store.test/shops/{shop['id']}" in text
    assert f"{fan.username} now follows Satoshi Hardware" in html and "<html" in html
    assert f'href="https://store.test/shops/{shop["id"]}"' in html
    assert f"Hi {owner.username}" in text and f"Hi {owner.username}" in html

    [row] = deliveries(api)
    assert row.status == "delivered" and row.attempts == 1 and row.delivered_at is not None
    [ev] = api.events("notification.delivered")
    assert ev.entity_type == "notification_delivery" and ev.entity_id == row.id
    assert ev.payload["channel"] == "email" and ev.payload["userId"] == owner.id
    # The in-app row is there too, and the event of its creation lists the queued channel.
    [created] = api.events("notification.created")
    assert created.payload["channels"] == ["in_app", "email"]
    assert deliver(api, settings).claimed == 0  # delivered once, not again


def test_new_message_email_escapes_user_text(api: Api, settings: Settings, inbox: Inbox) -> None:
    seller, buyer = api.user("seller"), api.user()
    shop = api.shop(seller)
    conv = data(
        api.client.post("/api/conversations", json={"shopId": shop["id"]}, headers=buyer.headers), 201
    )
    nasty = "Is it <b>new</b>? <script>alert('x')</script> & boxed?"
    data(
        api.client.post(
            f"/api/conversations/{conv['id']}/messages", json={"body": nasty}, headers=buyer.headers
        ),
        201,
    )
    deliver(api, settings)
    [env] = inbox.envelopes
    assert env.rcpt_tos == [seller.email]
    [msg] = inbox.messages()
    text, html = body_parts(msg)
    assert msg["Subject"].startswith(f"New message from {buyer.username}")
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp; boxed" in html
    assert "<script>alert('x')</script>" in text  # plain text stays as written
    assert f"https://store.test/conversations/{conv['id']}" in html


def test_email_waits_in_the_queue_while_smtp_is_not_configured(
    api: Api, settings: Settings, inbox: Inbox, shop_owner
) -> None:
    _, shop = shop_owner
    follow(api, api.user(), shop["id"])
    unconfigured = settings.model_copy(update={"smtp_host": None})
    assert deliver(api, unconfigured).claimed == 0
    [row] = deliveries(api)
    assert row.status == "pending" and row.attempts == 0
    assert deliver(api, settings).delivered == 1 and len(inbox.envelopes) == 1


# --- webhooks --------------------------------------------------------------------------------------------


def test_webhook_is_signed_with_the_users_secret(
    api: Api, settings: Settings, hooks: Receiver, shop_owner
) -> None:
    owner, shop = shop_owner
    channels = set_channels(api, owner, webhookUrl=f"{hooks.url}/store-hook")
    secret = channels["webhookSecret"]
    assert channels["webhookUrl"] == f"{hooks.url}/store-hook" and secret.startswith("whsec_")
    fan = api.user()
    follow(api, fan, shop["id"])
    assert {r.channel for r in deliveries(api)} == {"email", "webhook"}

    now = api.clock.now()
    report = deliver(api, settings)
    assert report.delivered == 2
    [req] = hooks.requests
    assert req.path == "/store-hook"
    expected = "sha256=" + hmac.new(secret.encode(), req.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(req.headers["x-store-signature"], expected)
    assert req.headers["x-store-event"] == "new_follower"
    assert abs(int(req.headers["x-store-timestamp"]) - int(now.timestamp())) <= 1
    assert req.headers["content-type"] == "application/json"
    body = req.json()
    [note] = data(api.client.get("/api/notifications", headers=owner.headers))
    assert body["id"] == note["id"] and body["userId"] == owner.id and body["type"] == "new_follower"
    assert body["title"] == "New follower" and body["data"] == {"shopId": shop["id"], "followerId": fan.id}
    assert body["body"] == note["body"] and body["createdAt"].startswith(note["createdAt"][:19])
    [row] = deliveries(api, channel="webhook")
    assert body["deliveryId"] == row.id == int(req.headers["x-store-delivery"])
    # A signature made with another key does not match: the secret is what proves the sender.
    forged = "sha256=" + hmac.new(b"whsec_other", req.body, hashlib.sha256).hexdigest()
    assert not hmac.compare_digest(req.headers["x-store-signature"], forged)


def test_webhook_failing_twice_is_delivered_on_the_third_attempt_after_backoff(
    api: Api, settings: Settings, hooks: Receiver, shop_owner
) -> None:
    owner, shop = shop_owner
    set_channels(api, owner, webhookUrl=hooks.url)
    off = {"preferences": [{"type": "new_follower", "channel": "email", "enabled": False}]}
    data(api.client.put(PREFS_URL, json=off, headers=owner.headers))
    hooks.statuses = [500, 500]
    follow(api, api.user(), shop["id"])

    t0 = api.clock.now()
    assert deliver(api, settings).retrying == 1
    [row] = deliveries(api)
    assert row.status == "failed" and row.attempts == 1 and "HTTP 500" in (row.last_error or "")
    first_wait = (row.next_attempt_at - t0).total_seconds()
    assert 10 <= first_wait <= 12.6  # 10 s backoff, up to 25 % jitter

    api.clock.advance(timedelta(seconds=9))
    assert deliver(api, settings).claimed == 0  # not due yet
    api.clock.set(row.next_attempt_at + timedelta(milliseconds=1))
    t1 = api.clock.now()
    assert deliver(api, settings).retrying == 1
    [row] = deliveries(api)
    assert row.status == "failed" and row.attempts == 2
    assert 20 <= (row.next_attempt_at - t1).total_seconds() <= 25.1  # doubled

    api.clock.advance(timedelta(seconds=19))
    assert deliver(api, settings).claimed == 0
    api.clock.set(row.next_attempt_at)
    assert deliver(api, settings).delivered == 1
    [row] = deliveries(api)
    assert row.status == "delivered" and row.attempts == 3 and row.last_error is None
    assert len(hooks.requests) == 3
    assert len({r.headers["x-store-delivery"] for r in hooks.requests}) == 1  # the same delivery, retried
    assert [e.payload["attempts"] for e in api.events("notification.delivery_failed")] == [1, 2]
    [ev] = api.events("notification.delivered")
    assert ev.payload["attempts"] == 3


def test_webhook_always_failing_goes_dead_and_an_admin_can_requeue(
    api: Api, settings: Settings, hooks: Receiver, shop_owner
) -> None:
    owner, shop = shop_owner
    admin, buyer = api.user("admin"), api.user()
    set_channels(api, owner, webhookUrl=hooks.url)
    hooks.default = 503
    follow(api, buyer, shop["id"])
    for _ in range(3):  # delivery_max_attempts
        deliver(api, settings)
        api.clock.advance(timedelta(seconds=60))
    [row] = deliveries(api, channel="webhook")
    assert row.status == "dead" and row.attempts == 3 and "HTTP 503" in (row.last_error or "")
    assert deliver(api, settings).claimed == 0  # the dead stay dead
    assert len(hooks.requests) == 3
    [ev] = api.events("notification.dead_lettered")
    assert ev.entity_id == row.id and "503" in ev.payload["error"]

    stats = data(api.client.get(STATS_URL, headers=admin.headers))
    assert stats["deadLetters"] == 1 and stats["channels"]["webhook"]["dead"] == 1
    assert stats["channels"]["webhook"]["averageAttempts"] == 3.0
    dead = data(api.client.get("/api/notifications/deliveries?status=dead", headers=admin.headers))
    assert [d["id"] for d in dead] == [row.id] and dead[0]["lastError"].startswith("HTTP 503")

    url = f"/api/notifications/deliveries/{row.id}/retry"
    error(api.client.post(url, headers=owner.headers), 403, "FORBIDDEN")
    error(api.client.post("/api/notifications/deliveries/999999/retry", headers=admin.headers), 404)
    again = data(api.client.post(url, headers=admin.headers))
    assert again["status"] == "pending" and again["attempts"] == 0
    [requeued] = api.events("notification.delivery_requeued")
    assert requeued.actor_user_id == admin.id and requeued.payload["from"] == "dead"
    hooks.default = 200
    assert deliver(api, settings).delivered == 1
    error(api.client.post(url, headers=admin.headers), 409, "INVALID_STATE_TRANSITION")
    stats = data(api.client.get(STATS_URL, headers=admin.headers))
    assert stats["deadLetters"] == 0 and stats["channels"]["webhook"]["delivered"] == 1


UNSAFE = [
    "http://127.0.0.1:9/hook",
    "http://localhost/hook",
    "http://10.1.2.3/hook",
    "http://192.168.1.10/hook",
    "http://172.16.0.1/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook",
    "http://[fe80::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "http://100.64.0.1/hook",
    "ftp://93.184.216.34/hook",
    "file:///etc/passwd",
    "javascript:alert(1)",
    "http://user:pw@93.184.216.34/hook",
    "http://no-such-host.invalid/hook",
    "not a url",
]


@pytest.mark.parametrize("overrides", [{"webhook_allow_private": False}])
def test_private_and_malformed_webhook_urls_are_refused(api: Api, overrides: dict[str, Any]) -> None:
    user = api.user()
    for url in UNSAFE:
        err = set_channels(api, user, 422, webhookUrl=url)
        assert err["code"] in ("INVALID_WEBHOOK_URL", "VALIDATION_ERROR"), (url, err)
    assert data(api.client.get(CHANNELS_URL, headers=user.headers))["webhookUrl"] is None
    assert api.count("notification_targets") == 0
    assert api.events("notification.channels_updated") == []
    # A public address is fine (nothing is sent when it is saved).
    ok = set_channels(api, user, webhookUrl="https://93.184.216.34/hook")
    assert ok["webhookUrl"] == "https://93.184.216.34/hook"


def test_webhook_target_is_checked_again_at_delivery(
    api: Api, settings: Settings, hooks: Receiver, shop_owner
) -> None:
    """Saved while loopback was allowed; by delivery time it is not: dead, and nothing is sent."""
    owner, shop = shop_owner
    set_channels(api, owner, webhookUrl=hooks.url)
    follow(api, api.user(), shop["id"])
    strict = settings.model_copy(update={"webhook_allow_private": False})
    report = deliver(api, strict)
    assert report.dead == 1
    [row] = deliveries(api, channel="webhook")
    assert row.status == "dead" and row.attempts == 1
    assert "loopback" in (row.last_error or "")
    assert hooks.requests == []


# --- Telegram ------------------------------------------------------------------------------------------


def test_telegram_message_reaches_the_bot_api(
    api: Api, settings: Settings, bot: Receiver, shop_owner
) -> None:
    owner, shop = shop_owner
    out = set_channels(api, owner, telegramChatId="-1001234567890")
    assert out["telegramChatId"] == "-1001234567890" and out["telegramAvailable"] is True
    fan = api.user()
    follow(api, fan, shop["id"])
    assert deliver(api, settings).delivered == 2  # email and Telegram
    [req] = bot.requests
    assert req.path == f"/bot{TOKEN}/sendMessage"
    body = req.json()
    assert body["chat_id"] == "-1001234567890" and body["parse_mode"] == "HTML"
    assert body["text"].startswith("<b>New follower</b>")
    assert f"{fan.username} now follows Satoshi Hardware" in body["text"]
    assert f'<a href="https://store.test/shops/{shop["id"]}">' in body["text"]
    [row] = deliveries(api, channel="telegram")
    assert row.status == "delivered" and row.target == "-1001234567890"


@pytest.mark.parametrize("overrides", [{"telegram_bot_token": None}])
def test_telegram_without_a_bot_token_is_dead_with_the_reason(
    api: Api, settings: Settings, bot: Receiver, shop_owner, overrides: dict[str, Any]
) -> None:
    owner, shop = shop_owner
    assert set_channels(api, owner, telegramChatId="42")["telegramAvailable"] is False
    follow(api, api.user(), shop["id"])
    report = deliver(api, settings)
    assert report.dead == 1
    [row] = deliveries(api, channel="telegram")
    assert row.status == "dead" and row.attempts == 1
    assert "STORE_TELEGRAM_BOT_TOKEN" in (row.last_error or "")
    assert bot.requests == []


def test_bot_api_error_is_retried_with_its_description(
    api: Api, settings: Settings, bot: Receiver, shop_owner
) -> None:
    owner, shop = shop_owner
    set_channels(api, owner, telegramChatId="42")
    bot.statuses = [429]
    follow(api, api.user(), shop["id"])
    deliver(api, settings)
    [row] = deliveries(api, channel="telegram")
    assert row.status == "failed" and "Telegram HTTP 429" in (row.last_error or "")
    assert TOKEN not in (row.last_error or "")


# --- preferences, targets, transactions -----------------------------------------------------------------


def test_channel_turned_off_queues_nothing_for_it(
    api: Api, settings: Settings, hooks: Receiver, shop_owner
) -> None:
    owner, shop = shop_owner
    set_channels(api, owner, webhookUrl=hooks.url, telegramChatId="42")
    prefs = {
        "preferences": [
            {"type": "new_follower", "channel": "email", "enabled": False},
            {"type": "new_follower", "channel": "telegram", "enabled": False},
        ]
    }
    data(api.client.put(PREFS_URL, json=prefs, headers=owner.headers))
    follow(api, api.user(), shop["id"])
    assert [r.channel for r in deliveries(api)] == ["webhook"]
    # Other types are unaffected.
    with api.store.write() as s:
        notify(Uow(session=s, now=api.clock.now()), owner.id, NotificationType.system, "Maintenance")
        s.commit()
    assert sorted(r.channel for r in deliveries(api, type="system")) == ["email", "telegram", "webhook"]


def test_in_app_off_still_delivers_the_enabled_external_channels(
    api: Api, settings: Settings, inbox: Inbox, shop_owner
) -> None:
    owner, shop = shop_owner
    off = {"preferences": [{"type": "new_follower", "channel": "in_app", "enabled": False}]}
    data(api.client.put(PREFS_URL, json=off, headers=owner.headers))
    follow(api, api.user(), shop["id"])
    assert data(api.client.get("/api/notifications", headers=owner.headers)) == []
    [row] = deliveries(api)
    assert row.channel == "email" and row.notification_id is None
    [ev] = api.events("notification.queued")
    assert ev.payload["channels"] == ["email"] and ev.entity_id == owner.id
    assert deliver(api, settings).delivered == 1 and len(inbox.envelopes) == 1


def test_rolled_back_notify_leaves_no_delivery(
    api: Api, settings: Settings, hooks: Receiver, inbox: Inbox
) -> None:
    user = api.user()
    set_channels(api, user, webhookUrl=hooks.url)
    with api.store.write() as s:
        note = notify(Uow(session=s, now=api.clock.now()), user.id, NotificationType.system, "Rolled back")
        s.flush()
        assert note is not None
        queued = s.execute(select(NotificationDelivery.channel)).scalars().all()
        assert sorted(queued) == ["email", "webhook"]  # queued inside the transaction...
        s.rollback()  # ...which then fails
    assert api.count("notification_deliveries") == 0 and api.count("notifications") == 0
    assert deliver(api, settings).claimed == 0
    assert inbox.envelopes == [] and hooks.requests == []

    with api.store.write() as s:
        notify(Uow(session=s, now=api.clock.now()), user.id, NotificationType.system, "Committed")
        s.commit()
    assert deliver(api, settings).delivered == 2
    assert len(inbox.envelopes) == 1 and len(hooks.requests) == 1


def test_channels_are_the_owners_own(api: Api, settings: Settings, hooks: Receiver) -> None:
    alice, bob = api.user(), api.user()
    error(api.client.get(CHANNELS_URL), 401)
    start = data(api.client.get(CHANNELS_URL, headers=alice.headers))
    assert start == {
        "email": alice.email,
        "emailAvailable": True,
        "webhookUrl": None,
        "webhookSecret": None,
        "telegramChatId": None,
        "telegramAvailable": True,
    }
    first = set_channels(api, alice, webhookUrl=f"{hooks.url}/a")
    secret = first["webhookSecret"]
    # Readable again by its owner; a new URL keeps the secret; rotation replaces it.
    assert data(api.client.get(CHANNELS_URL, headers=alice.headers))["webhookSecret"] == secret
    assert set_channels(api, alice, webhookUrl=f"{hooks.url}/b")["webhookSecret"] == secret
    rotated = data(api.client.post(f"{CHANNELS_URL}/webhook-secret", headers=alice.headers))
    assert rotated["webhookSecret"] not in (None, secret)
    # Absent fields stay; null removes (and drops the secret).
    both = set_channels(api, alice, telegramChatId="@store_alerts")
    assert both["webhookUrl"] == f"{hooks.url}/b" and both["telegramChatId"] == "@store_alerts"
    cleared = set_channels(api, alice, webhookUrl=None)
    assert cleared["webhookUrl"] is None and cleared["webhookSecret"] is None
    assert cleared["telegramChatId"] == "@store_alerts"
    error(api.client.post(f"{CHANNELS_URL}/webhook-secret", headers=alice.headers), 409, "NO_WEBHOOK")
    # Nothing of Alice's shows to Bob.
    assert data(api.client.get(CHANNELS_URL, headers=bob.headers))["webhookUrl"] is None

    changes = [e.payload["changed"] for e in api.events("notification.channels_updated")]
    assert changes == [["webhookUrl"], ["webhookUrl"], ["webhookSecret"], ["telegramChatId"], ["webhookUrl"]]
    assert all(hooks.url not in json.dumps(e.payload) for e in api.events("notification.channels_updated"))
    # Saving the same values is no change.
    set_channels(api, alice, telegramChatId="@store_alerts")
    assert len(api.events("notification.channels_updated")) == 5


@pytest.mark.parametrize(
    "body",
    [
        {"telegramChatId": "not a chat"},
        {"telegramChatId": 42},
        {"webhookUrl": ""},
        {"webhookUrl": "https://93.184.216.34/" + "x" * 2048},
        {"email": "me@example.com"},
    ],
)
def test_channels_validation(api: Api, body: dict[str, Any]) -> None:
    user = api.user()
    error(api.client.put(CHANNELS_URL, json=body, headers=user.headers), 422)
    assert api.count("notification_targets") == 0


def test_push_and_sms_are_not_channels(api: Api) -> None:
    user = api.user()
    for channel in ("push", "sms"):
        body = {"preferences": [{"type": "system", "channel": channel, "enabled": False}]}
        error(api.client.put(PREFS_URL, json=body, headers=user.headers), 422, "VALIDATION_ERROR")


def test_webhook_removed_before_delivery_is_dead(api: Api, settings: Settings, hooks: Receiver) -> None:
    user = api.user()
    set_channels(api, user, webhookUrl=hooks.url)
    with api.store.write() as s:
        notify(Uow(session=s, now=api.clock.now()), user.id, NotificationType.system, "Hello")
        s.commit()
    set_channels(api, user, webhookUrl=None)
    deliver(api, settings)
    [row] = deliveries(api, channel="webhook")
    assert row.status == "dead" and "removed" in (row.last_error or "") and hooks.requests == []


# --- the worker's guarantees -------------------------------------------------------------------------------


def test_two_workers_never_send_the_same_delivery(api: Api, settings: Settings, hooks: Receiver) -> None:
    user = api.user()
    set_channels(api, user, webhookUrl=hooks.url)
    off = {"preferences": [{"type": "system", "channel": "email", "enabled": False}]}
    data(api.client.put(PREFS_URL, json=off, headers=user.headers))
    with api.store.write() as s:
        uow = Uow(session=s, now=api.clock.now())
        for i in range(24):
            notify(uow, user.id, NotificationType.system, f"Note {i}")
        s.commit()
    other = Store.from_settings(settings)  # a second process has its own engine
    now = api.clock.now()

    async def worker(store: Store) -> int:
        sent = 0
        async with http_client(settings) as http:
            while (report := await deliver_due(store, settings, now, http, limit=5)).claimed:
                sent += report.delivered
        return sent

    async def both() -> list[int]:
        return list(await asyncio.gather(worker(api.store), worker(other)))

    try:
        counts = asyncio.run(both())
    finally:
        other.engine.dispose()
    assert sum(counts) == 24
    ids = [r.headers["x-store-delivery"] for r in hooks.requests]
    assert len(ids) == 24 and len(set(ids)) == 24
    assert {(r.status, r.attempts) for r in deliveries(api)} == {("delivered", 1)}


def test_a_delivery_stuck_in_sending_is_retried_after_its_lease(
    api: Api, settings: Settings, inbox: Inbox
) -> None:
    user = api.user()
    with api.store.write() as s:
        notify(Uow(session=s, now=api.clock.now()), user.id, NotificationType.system, "Hello")
        s.commit()
    [claimed] = claim_due(api.store, settings, api.clock.now())  # a worker claims it, then dies
    [row] = deliveries(api)
    assert row.status == "sending" and row.attempts == 1 and claimed.id == row.id
    assert deliver(api, settings).claimed == 0  # still leased
    api.clock.advance(timedelta(seconds=lease_seconds(settings) + 1))
    assert deliver(api, settings).delivered == 1
    [row] = deliveries(api)
    assert row.status == "delivered" and row.attempts == 2
    assert len(inbox.envelopes) == 1


# --- statistics -------------------------------------------------------------------------------------------


def test_stats_per_channel_and_admin_only(
    api: Api, settings: Settings, hooks: Receiver, bot: Receiver, shop_owner
) -> None:
    owner, shop = shop_owner
    admin, buyer = api.user("admin"), api.user()
    error(api.client.get(STATS_URL), 401)
    error(api.client.get(STATS_URL, headers=buyer.headers), 403, "FORBIDDEN")
    error(api.client.get(STATS_URL, headers=owner.headers), 403, "FORBIDDEN")
    error(api.client.get("/api/notifications/deliveries", headers=owner.headers), 403, "FORBIDDEN")

    empty = data(api.client.get(STATS_URL, headers=admin.headers))
    assert empty["deadLetters"] == 0 and empty["total"]["oldestPendingAgeSeconds"] is None
    assert set(empty["channels"]) == {"email", "webhook", "telegram"}
    assert empty["configured"] == {"email": True, "webhook": True, "telegram": True}

    set_channels(api, owner, webhookUrl=hooks.url, telegramChatId="42")
    hooks.default = 500
    follow(api, buyer, shop["id"])
    api.clock.advance(timedelta(seconds=30))
    queued = data(api.client.get(STATS_URL, headers=admin.headers))
    assert queued["total"]["pending"] == 3
    assert 30 <= queued["total"]["oldestPendingAgeSeconds"] < 31
    assert queued["channels"]["webhook"]["pending"] == 1

    deliver(api, settings)  # email and Telegram delivered, the webhook fails
    stats = data(api.client.get(STATS_URL, headers=admin.headers))
    assert stats["channels"]["email"] == {
        "pending": 0,
        "sending": 0,
        "failed": 0,
        "delivered": 1,
        "dead": 0,
        "deliveredLastHour": 1,
        "deliveredLastDay": 1,
        "averageAttempts": 1.0,
        "oldestPendingAgeSeconds": None,
    }
    assert stats["channels"]["webhook"]["failed"] == 1
    assert stats["channels"]["webhook"]["oldestPendingAgeSeconds"] >= 30
    assert stats["total"]["delivered"] == 2 and stats["total"]["deliveredLastHour"] == 2

    for _ in range(2):
        api.clock.advance(timedelta(minutes=1))
        deliver(api, settings)
    api.clock.advance(timedelta(hours=2))
    admin = relogin(api, admin)  # its access token has expired meanwhile
    stats = data(api.client.get(STATS_URL, headers=admin.headers))
    assert stats["deadLetters"] == 1 and stats["channels"]["webhook"]["dead"] == 1
    assert stats["total"]["deliveredLastHour"] == 0 and stats["total"]["deliveredLastDay"] == 2
    assert stats["total"]["averageAttempts"] == round((1 + 1 + 3) / 3, 2)
    assert stats["total"]["oldestPendingAgeSeconds"] is None
    api.clock.advance(timedelta(days=1))
    admin = relogin(api, admin)
    later = data(api.client.get(STATS_URL, headers=admin.headers))
    assert later["total"]["deliveredLastDay"] == 0 and later["total"]["delivered"] == 2


# --- live in-app, and the worker the app runs itself ----------------------------------------------------


def test_in_app_notification_is_pushed_over_the_socket(api: Api, shop_owner) -> None:
    owner, shop = shop_owner
    with api.client.websocket_connect(f"/ws?token={owner.access_token}") as ws:
        assert ws.receive_json()["type"] == "welcome"
        fan = api.user()
        follow(api, fan, shop["id"])
        ws.send_json({"type": "ping", "id": "sync"})
        frames = []
        while (frame := ws.receive_json()).get("id") != "sync":
            frames.append(frame)
    [pushed] = [f for f in frames if f["type"] == "notification"]
    [stored] = data(api.client.get("/api/notifications", headers=owner.headers))
    assert pushed["data"] == stored
    assert pushed["data"]["type"] == "new_follower" and pushed["data"]["data"]["followerId"] == fan.id


def test_the_apps_own_worker_delivers(
    settings: Settings, clock, store: Store, inbox: Inbox, hooks: Receiver
) -> None:
    live = settings.model_copy(update={"delivery_poll_seconds": 0.05})
    with TestClient(create_app(live, clock=clock, store=store), raise_server_exceptions=False) as client:
        api = Api(client, store, clock)
        owner = api.user("seller")
        shop = api.shop(owner)
        set_channels(api, owner, webhookUrl=hooks.url)
        follow(api, api.user(), shop["id"])
        deadline = time.monotonic() + 10
        while (not inbox.envelopes or not hooks.requests) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(inbox.envelopes) == 1 and len(hooks.requests) == 1
        assert inbox.envelopes[0].rcpt_tos == [owner.email]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and {r.status for r in deliveries(api)} != {"delivered"}:
            time.sleep(0.02)
        assert {r.status for r in deliveries(api)} == {"delivered"}


def test_concurrent_first_saves_of_channels_keep_one_target(
    api: Api, server_url: str, hooks: Receiver
) -> None:
    user = api.user()

    def save(i: int) -> int:
        with httpx.Client(base_url=server_url, timeout=30) as c:
            body = {"webhookUrl": f"{hooks.url}/{i}", "telegramChatId": str(1000 + i)}
            return c.put(CHANNELS_URL, json=body, headers=user.headers).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(save, range(8))) == [200] * 8
    assert api.count("notification_targets") == 1
    final = data(api.client.get(CHANNELS_URL, headers=user.headers))
    assert final["webhookUrl"].rsplit("/", 1)[1] == str(int(final["telegramChatId"]) - 1000)
    assert len(api.events("notification.channels_updated")) == 8


def test_every_type_has_an_email_and_a_telegram_message(
    api: Api, settings: Settings, inbox: Inbox, bot: Receiver
) -> None:
    user = api.user()
    set_channels(api, user, telegramChatId="77")
    samples: dict[NotificationType, tuple[dict[str, Any], str | None]] = {
        NotificationType.order_update: ({"orderId": 12, "shopId": 3, "status": "shipped"}, "/orders/12"),
        NotificationType.new_message: ({"conversationId": 5, "messageId": 9}, "/conversations/5"),
        NotificationType.new_follower: ({"shopId": 3, "followerId": 8}, "/shops/3"),
        NotificationType.price_alert: ({"productId": 4, "price": "19.5", "targetPrice": "20"}, "/products/4"),
        NotificationType.call: ({"callId": 2}, "/calls"),
        NotificationType.system: ({}, None),
    }
    with api.store.write() as s:
        uow = Uow(session=s, now=api.clock.now())
        for ntype, (payload, _) in samples.items():
            notify(uow, user.id, ntype, f"Title of {ntype.value}", f"Body of {ntype.value}", payload)
        s.commit()
    assert deliver(api, settings).delivered == 12
    mails = {m["X-Store-Notification-Type"]: m for m in inbox.messages()}
    texts = {
        r.json()["text"].split("</b>")[0].removeprefix("<b>Title of "): r.json()["text"] for r in bot.requests
    }
    assert set(mails) == set(texts) == {t.value for t in samples}
    for ntype, (_, path) in samples.items():
        msg = mails[ntype.value]
        assert msg["Subject"] == f"Title of {ntype.value} · Crypto Store"
        text, html = body_parts(msg)
        assert f"Body of {ntype.value}" in text and f"Body of {ntype.value}" in html
        if path is None:
            assert "https://store.test" not in text and "href=" not in html
        else:
            assert f"https://store.test{path}" in text and f'href="https://store.test{path}"' in html
            assert f'href="https://store.test{path}"' in texts[ntype.value]
    order_text, order_html = body_parts(mails["order_update"])
    assert "Order #12, status shipped" in order_text and "<strong>#12</strong>" in order_html
    assert "Now 19.5, your target 20" in body_parts(mails["price_alert"])[0]
