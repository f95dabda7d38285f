"""The delivery worker: drains `notification_deliveries` to email, webhooks and Telegram.

One pass (`deliver_due`) claims due rows, sends them concurrently and records each outcome:
delivered; failed, retried after `delivery_backoff_seconds * 2**(attempts-1)` (+ up to 25 % jitter,
so a burst of failures does not retry in lockstep); dead after `delivery_max_attempts`, or at once for
a failure no retry can fix (a missing bot token, a forbidden webhook address). Delivery is at least
once: a worker that dies mid-send leaves its rows in 'sending' with a lease (next_attempt_at) that
runs out, and the next pass takes them again.

Claims are safe across processes: on PostgreSQL the candidate rows are locked with
FOR UPDATE SKIP LOCKED; on both databases the claim is a conditional UPDATE that only moves rows
still due, so two workers never both send one row. Claiming is queue bookkeeping and writes no
event (SILENT_OK); every outcome does: notification.delivered, notification.delivery_failed (one per
failed attempt that will be retried: the failure rate is what delivery analytics are about) and
notification.dead_lettered.

Email rows wait in the queue while SMTP is not configured (they are not claimed, so nothing is lost
and the oldest pending age in the stats shows it); Telegram rows exist only once a user set a chat
id, so without a bot token they are dead-lettered with the reason."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from fastapi import FastAPI
from sqlalchemy import select, update

from api.auth.models import User
from api.core.clock import Clock
from api.core.settings import Settings
from api.db.engine import Store
from api.notifications.channels import DeliveryError, Outgoing, SendContext, Sender, describe
from api.notifications.channels import email as email_channel
from api.notifications.channels import telegram as telegram_channel
from api.notifications.channels import webhook as webhook_channel
from api.notifications.models import Channel, DeliveryStatus, NotificationDelivery, NotificationTarget
from api.outbox.service import SILENT_OK, Uow
from api.outbox.types import EventType

log = structlog.get_logger("api.notifications.delivery")

BATCH_SIZE = 100
CONCURRENCY = 16
JITTER = 0.25
CLAIMABLE = (DeliveryStatus.pending.value, DeliveryStatus.failed.value, DeliveryStatus.sending.value)

SENDERS: dict[str, Sender] = {
    Channel.email.value: email_channel.send,
    Channel.webhook.value: webhook_channel.send,
    Channel.telegram.value: telegram_channel.send,
}

_random = secrets.SystemRandom()
D = NotificationDelivery


@dataclass
class DeliveryReport:
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    errors: dict[int, str] = field(default_factory=dict)  # delivery id -> error of this pass


def lease_seconds(settings: Settings) -> float:
    """How long a claimed row stays claimed. An email may take a few round trips of the timeout, so
    the lease is several timeouts: a slow but live worker never loses its rows to another."""
    return max(30.0, 4 * settings.webhook_timeout_seconds)


def backoff_seconds(settings: Settings, attempts: int) -> float:
    base = settings.delivery_backoff_seconds * 2.0 ** max(0, attempts - 1)
    return base * (1 + JITTER * _random.random())


def claimable_channels(settings: Settings) -> list[str]:
    channels = [Channel.webhook.value, Channel.telegram.value]
    if email_channel.configured(settings):
        channels.append(Channel.email.value)
    return channels


def claim_due(store: Store, settings: Settings, now: datetime, limit: int = BATCH_SIZE) -> list[Outgoing]:
    """Moves up to `limit` due rows to 'sending' (one more attempt, a lease) and returns them."""
    due = (D.status.in_(CLAIMABLE), D.next_attempt_at <= now, D.channel.in_(claimable_channels(settings)))
    # A lock-free look first: an idle queue must not take SQLite's write lock every poll.
    with store.read() as r:
        if r.execute(select(D.id).where(*due).limit(1)).first() is None:
            return []
    with store.write() as s:
        candidates = select(D.id).where(*due).order_by(D.next_attempt_at, D.id).limit(limit)
        if store.dialect == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        ids = list(s.execute(candidates).scalars())
        if not ids:
            return []
        # Re-checks the condition in the UPDATE itself: a row another process took in between is
        # no longer due (its lease is in the future), so it is not claimed twice.
        claimed = list(
            s.execute(
                update(D)
                .where(D.id.in_(ids), *due)
                .values(
                    status=DeliveryStatus.sending.value,
                    attempts=D.attempts + 1,
                    next_attempt_at=now + timedelta(seconds=lease_seconds(settings)),
                    updated_at=now,
                )
                .returning(D.id)
                .execution_options(synchronize_session=False)
            ).scalars()
        )
        rows = s.execute(
            select(D, User.username, NotificationTarget.webhook_secret)
            .join(User, User.id == D.user_id)
            .outerjoin(NotificationTarget, NotificationTarget.user_id == D.user_id)
            .where(D.id.in_(claimed))
            .order_by(D.id)
        ).all()
        items = [
            Outgoing(
                id=d.id,
                notification_id=d.notification_id,
                user_id=d.user_id,
                username=username,
                channel=d.channel,
                target=d.target,
                type=d.type,
                title=d.title,
                body=d.body,
                data=dict(d.data),
                created_at=d.created_at,
                attempts=d.attempts,
                webhook_secret=secret,
            )
            for d, username, secret in rows
        ]
        s.info[SILENT_OK] = True  # a claim is a lease, not a change anyone downstream acts on
        s.commit()
    return items


def record_outcomes(
    store: Store, settings: Settings, now: datetime, outcomes: Sequence[tuple[Outgoing, DeliveryError | None]]
) -> DeliveryReport:
    report = DeliveryReport(claimed=len(outcomes))
    with store.write() as s:
        uow = Uow(session=s, now=now)
        for item, error in outcomes:
            values: dict[str, Any]
            payload: dict[str, Any]
            base: dict[str, Any] = {
                "userId": item.user_id,
                "notificationId": item.notification_id,
                "channel": item.channel,
                "type": item.type,
                "attempts": item.attempts,
            }
            if error is None:
                status, values = DeliveryStatus.delivered, {"delivered_at": now, "last_error": None}
                event, payload = EventType.notification_delivered, base
            elif error.permanent or item.attempts >= settings.delivery_max_attempts:
                status, values = DeliveryStatus.dead, {"last_error": str(error)}
                event, payload = EventType.notification_dead_lettered, {**base, "error": str(error)}
            else:
                retry_at = now + timedelta(seconds=backoff_seconds(settings, item.attempts))
                status, values = (
                    DeliveryStatus.failed,
                    {"last_error": str(error), "next_attempt_at": retry_at},
                )
                event, payload = (
                    EventType.notification_delivery_failed,
                    {**base, "error": str(error), "nextAttemptAt": retry_at},
                )
            # Only if the row is still ours: past its lease another worker may have taken it.
            result = s.execute(
                update(D)
                .where(D.id == item.id, D.status == DeliveryStatus.sending.value, D.attempts == item.attempts)
                .values(status=status.value, updated_at=now, **values)
                .execution_options(synchronize_session=False)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                log.warning("delivery_lease_lost", delivery_id=item.id, channel=item.channel)
                continue
            uow.emit(event, "notification_delivery", item.id, payload)
            if status is DeliveryStatus.delivered:
                report.delivered += 1
            elif status is DeliveryStatus.dead:
                report.dead += 1
            else:
                report.retrying += 1
            if error is not None:
                report.errors[item.id] = str(error)
        uow.commit()
    return report


async def _attempt(item: Outgoing, ctx: SendContext, gate: asyncio.Semaphore) -> DeliveryError | None:
    sender = SENDERS.get(item.channel)
    if sender is None:
        return DeliveryError(f"unknown channel {item.channel!r}", permanent=True)
    async with gate:
        try:
            await sender(item, ctx)
        except DeliveryError as exc:
            log.info("delivery_failed", delivery_id=item.id, channel=item.channel, error=str(exc))
            return exc
        except Exception as exc:  # a bug in a channel must not take the batch down with it
            log.exception("delivery_crashed", delivery_id=item.id, channel=item.channel)
            return DeliveryError(describe(exc))
    return None


async def deliver_due(
    store: Store,
    settings: Settings,
    now: datetime,
    http: httpx.AsyncClient,
    *,
    clock: Clock | None = None,
    limit: int = BATCH_SIZE,
) -> DeliveryReport:
    """One pass of the worker. Outcomes are recorded at `clock.now()` when a clock is given (the
    sends took some time), else at `now`."""
    items = await asyncio.to_thread(claim_due, store, settings, now, limit)
    if not items:
        return DeliveryReport()
    ctx = SendContext(settings=settings, http=http, now=now)
    gate = asyncio.Semaphore(CONCURRENCY)
    errors = await asyncio.gather(*(_attempt(item, ctx, gate) for item in items))
    done_at = clock.now() if clock is not None else now
    return await asyncio.to_thread(
        record_outcomes, store, settings, done_at, list(zip(items, errors, strict=True))
    )


def http_client(settings: Settings) -> httpx.AsyncClient:
    # No proxies from the environment: a webhook goes to the address that passed the SSRF check.
    return httpx.AsyncClient(
        timeout=settings.webhook_timeout_seconds,
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=CONCURRENCY * 2, max_keepalive_connections=CONCURRENCY),
    )


async def run_delivery_worker(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    if settings.delivery_poll_seconds <= 0:
        return
    store: Store = app.state.store
    clock: Clock = app.state.clock
    async with http_client(settings) as http:
        while True:
            try:
                report = await deliver_due(store, settings, clock.now(), http, clock=clock)
            except Exception:  # the database may be away for a while: log and keep polling
                log.exception("delivery_pass_failed")
                report = DeliveryReport()
            if report.claimed:
                log.info(
                    "deliveries",
                    claimed=report.claimed,
                    delivered=report.delivered,
                    retrying=report.retrying,
                    dead=report.dead,
                )
            if report.claimed >= BATCH_SIZE:
                await asyncio.sleep(0)  # a backlog: take the next batch at once
            else:
                await asyncio.sleep(settings.delivery_poll_seconds)
