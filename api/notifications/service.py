"""Notifications (seed 001 §9): created by other domains inside their own transaction.

`notify` writes, in the caller's transaction, the in-app row (pushed live over /ws after the commit)
and one row per enabled external channel in the delivery queue, which the worker in delivery.py
drains. Nothing is sent for a change that rolled back, and nothing committed is lost.

Defaults: every (type, channel) preference is on until the user turns it off. A channel delivers
only when it has a target: email goes to users.email; webhook and Telegram start once the user sets
a URL or chat id (`PUT /api/notifications/channels`)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, func, select, update
from sqlalchemy.orm import Session

from api.auth.models import User
from api.core.deps import Principal
from api.core.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from api.core.settings import Settings
from api.notifications.channels import email as email_channel
from api.notifications.models import (
    EXTERNAL_CHANNELS,
    Channel,
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationPreference,
    NotificationTarget,
    NotificationType,
)
from api.notifications.schemas import (
    ChannelsIn,
    ChannelsOut,
    ChannelStatsOut,
    DeliveryStatsOut,
    NotificationOut,
    PreferencesIn,
)
from api.notifications.targets import UnsafeTarget, validate_webhook_url
from api.outbox.service import Uow
from api.outbox.types import EventType

OPEN_STATUSES = (DeliveryStatus.pending.value, DeliveryStatus.sending.value, DeliveryStatus.failed.value)
STATUSES = frozenset(s.value for s in DeliveryStatus)
D = NotificationDelivery


_PREFS: Table = NotificationPreference.__table__  # type: ignore[assignment]
_TARGETS: Table = NotificationTarget.__table__  # type: ignore[assignment]
_NOTES: Table = Notification.__table__  # type: ignore[assignment]
_DELIVERIES: Table = NotificationDelivery.__table__  # type: ignore[assignment]
_USERS: Table = User.__table__  # type: ignore[assignment]
# Built once: most writes of the store notify someone, and building these costs more than running them.
_OFF = select(_PREFS.c.channel).where(
    _PREFS.c.user_id == bindparam("uid"), _PREFS.c.type == bindparam("type"), _PREFS.c.enabled.is_(False)
)
_WHERE_TO = (
    select(_USERS.c.email, _USERS.c.is_active, _TARGETS.c.webhook_url, _TARGETS.c.telegram_chat_id)
    .select_from(_USERS.outerjoin(_TARGETS, _TARGETS.c.user_id == _USERS.c.id))
    .where(_USERS.c.id == bindparam("uid"))
)
_INSERT_NOTE = _NOTES.insert().returning(_NOTES.c.id)


def enabled_channels(session: Session, user_id: int, ntype: NotificationType) -> set[Channel]:
    """The channels this type is on for: all of them, minus those the user turned off."""
    off: set[str] = set(session.execute(_OFF, {"uid": user_id, "type": ntype.value}).scalars())
    return {c for c in Channel if c.value not in off}


def channel_enabled(uow: Uow, user_id: int, ntype: NotificationType, channel: Channel) -> bool:
    return channel in enabled_channels(uow.session, user_id, ntype)


def delivery_targets(session: Session, user_id: int) -> dict[Channel, str]:
    """Where each external channel of the user goes, for the channels that have a target."""
    row = session.execute(_WHERE_TO, {"uid": user_id}).one_or_none()
    if row is None or not row.is_active:  # a deactivated account gets nothing outside the app
        return {}
    found = {
        Channel.email: row.email,
        Channel.webhook: row.webhook_url,
        Channel.telegram: row.telegram_chat_id,
    }
    return {c: t for c, t in found.items() if t}


def notify(
    uow: Uow,
    user_id: int,
    ntype: NotificationType,
    title: str,
    body: str = "",
    data: dict[str, Any] | None = None,
) -> int | None:
    """Creates the in-app notification and queues the external deliveries the user wants.

    Returns the in-app notification's id, or None when the user turned in-app off for this type
    (external channels may still have been queued). Core statements on the caller's transaction: the
    ORM's unit of work cost more than the inserts themselves on every order move and message."""
    s = uow.session
    data = data or {}
    title = title[:200]
    channels = enabled_channels(s, user_id, ntype)
    note_id: int | None = None
    if Channel.in_app in channels:
        row = {
            "user_id": user_id,
            "type": ntype.value,
            "title": title,
            "body": body,
            "data": data,
            "is_read": False,
            "created_at": uow.now,
        }
        note_id = int(s.execute(_INSERT_NOTE, row).scalar_one())
        push = NotificationOut(
            id=note_id,
            type=ntype.value,
            title=title,
            body=body,
            data=data,
            is_read=False,
            read_at=None,
            created_at=uow.now,
        )
        uow.push("notification", push.model_dump(mode="json", by_alias=True), user_ids=[user_id])
    queued: list[str] = []
    wanted = [c for c in EXTERNAL_CHANNELS if c in channels]
    targets = delivery_targets(s, user_id) if wanted else {}
    rows = [
        {
            "notification_id": note_id,
            "user_id": user_id,
            "channel": channel.value,
            "target": targets[channel],
            "type": ntype.value,
            "title": title,
            "body": body,
            "data": data,
            "status": DeliveryStatus.pending.value,
            "attempts": 0,
            "next_attempt_at": uow.now,
            "created_at": uow.now,
            "updated_at": uow.now,
        }
        for channel in wanted
        if channel in targets
    ]
    if rows:
        s.execute(_DELIVERIES.insert(), rows)
        queued = [c.value for c in wanted if c in targets]
    if note_id is not None:
        uow.emit(
            EventType.notification_created,
            "notification",
            note_id,
            {"userId": user_id, "type": ntype.value, "data": data, "channels": ["in_app", *queued]},
        )
    elif queued:
        uow.emit(
            EventType.notification_queued,
            "user",
            user_id,
            {"userId": user_id, "type": ntype.value, "data": data, "channels": queued},
        )
    return note_id


# --- the recipient's side -------------------------------------------------------------------------


def list_notifications(
    db: Session,
    principal: Principal,
    *,
    unread: bool | None,
    ntype: NotificationType | None,
    page: int,
    page_size: int,
) -> tuple[list[Notification], int]:
    conds = [Notification.user_id == principal.user_id]
    if unread is not None:
        conds.append(Notification.is_read.is_(not unread))
    if ntype is not None:
        conds.append(Notification.type == ntype.value)
    total = db.execute(select(func.count()).select_from(Notification).where(*conds)).scalar_one()
    rows = db.execute(
        select(Notification)
        .where(*conds)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).scalars()
    return list(rows), total


def unread_count(db: Session, user_id: int) -> int:
    return db.execute(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user_id, Notification.is_read.is_(False))
    ).scalar_one()


def _own(db: Session, principal: Principal, notification_id: int) -> Notification:
    note = db.get(Notification, notification_id)
    if note is None or note.user_id != principal.user_id:  # someone else's: not revealed
        raise NotFound("Notification", notification_id)
    return note


def mark_read(uow: Uow, principal: Principal, notification_id: int) -> Notification:
    """Idempotent: reading a read notification changes nothing and emits nothing."""
    note = _own(uow.session, principal, notification_id)
    if not note.is_read:
        note.is_read = True
        note.read_at = uow.now
        uow.emit(
            EventType.notification_read,
            "notification",
            note.id,
            {"userId": principal.user_id, "type": note.type},
        )
    return note


def mark_all_read(uow: Uow, principal: Principal) -> int:
    result = uow.session.execute(
        update(Notification)
        .where(Notification.user_id == principal.user_id, Notification.is_read.is_(False))
        .values(is_read=True, read_at=uow.now)
        .execution_options(synchronize_session=False)
    )
    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    uow.emit(
        EventType.notification_read,
        "user",
        principal.user_id,
        {"userId": principal.user_id, "all": True, "count": count},
    )
    return count


# --- preferences ------------------------------------------------------------------------------------


def preferences(db: Session, user_id: int) -> list[dict[str, Any]]:
    """Every (type, channel) pair, on unless the user turned it off."""
    stored = {
        (p.type, p.channel): p.enabled
        for p in db.execute(
            select(NotificationPreference).where(NotificationPreference.user_id == user_id)
        ).scalars()
    }
    return [
        {"type": t.value, "channel": c.value, "enabled": stored.get((t.value, c.value), True)}
        for t in NotificationType
        for c in Channel
    ]


def update_preferences(uow: Uow, principal: Principal, body: PreferencesIn) -> list[dict[str, Any]]:
    s = uow.session
    existing = {
        (p.type, p.channel): p
        for p in s.execute(
            select(NotificationPreference)
            .where(NotificationPreference.user_id == principal.user_id)
            .with_for_update()
        ).scalars()
    }
    changes: list[dict[str, Any]] = []
    for pref in body.preferences:
        key = (pref.type.value, pref.channel.value)
        row = existing.get(key)
        if row is None:
            s.add(
                NotificationPreference(
                    user_id=principal.user_id,
                    type=key[0],
                    channel=key[1],
                    enabled=pref.enabled,
                    updated_at=uow.now,
                )
            )
            old = True
        elif row.enabled != pref.enabled:
            old = row.enabled
            row.enabled = pref.enabled
            row.updated_at = uow.now
        else:
            continue
        changes.append({"type": key[0], "channel": key[1], "old": old, "new": pref.enabled})
    if changes:
        s.flush()
        uow.emit(
            EventType.notification_preferences_updated,
            "user",
            principal.user_id,
            {"userId": principal.user_id, "changes": changes},
        )
    return preferences(s, principal.user_id)


# --- channel targets --------------------------------------------------------------------------------


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _channels_out(session: Session, settings: Settings, user_id: int) -> ChannelsOut:
    email = session.execute(select(User.email).where(User.id == user_id)).scalar_one()
    target = session.get(NotificationTarget, user_id)
    token = settings.telegram_bot_token
    return ChannelsOut(
        email=email,
        email_available=email_channel.configured(settings),
        webhook_url=target.webhook_url if target else None,
        webhook_secret=target.webhook_secret if target else None,
        telegram_chat_id=target.telegram_chat_id if target else None,
        telegram_available=token is not None and bool(token.get_secret_value()),
    )


def channels(db: Session, settings: Settings, user_id: int) -> ChannelsOut:
    return _channels_out(db, settings, user_id)


def update_channels(uow: Uow, settings: Settings, principal: Principal, body: ChannelsIn) -> ChannelsOut:
    """Sets or removes (null) the webhook URL and the Telegram chat id. The first webhook URL gets a
    fresh signing secret; changing the URL keeps it, removing the URL drops it."""
    s = uow.session
    given = body.model_fields_set
    if "webhook_url" in given and body.webhook_url is not None:
        try:
            validate_webhook_url(body.webhook_url, allow_private=settings.webhook_allow_private)
        except UnsafeTarget as exc:
            raise ValidationFailed(
                f"webhookUrl refused: {exc}",
                code="INVALID_WEBHOOK_URL",
                details={"field": "webhookUrl", "reason": str(exc)},
            ) from None
    # The user's row is the lock: two first saves at once would otherwise both insert a target.
    s.execute(select(User.id).where(User.id == principal.user_id).with_for_update())
    target = s.get(NotificationTarget, principal.user_id)
    if target is None:
        target = NotificationTarget(user_id=principal.user_id, created_at=uow.now, updated_at=uow.now)
        s.add(target)
    changed: list[str] = []
    if "webhook_url" in given and body.webhook_url != target.webhook_url:
        target.webhook_url = body.webhook_url
        if body.webhook_url is None:
            target.webhook_secret = None
        elif target.webhook_secret is None:
            target.webhook_secret = new_webhook_secret()
        changed.append("webhookUrl")
    if "telegram_chat_id" in given and body.telegram_chat_id != target.telegram_chat_id:
        target.telegram_chat_id = body.telegram_chat_id
        changed.append("telegramChatId")
    if changed:
        target.updated_at = uow.now
        s.flush()
        uow.emit(
            EventType.notification_channels_updated,
            "user",
            principal.user_id,
            # Which targets changed, not the URL or chat id themselves: the event log is not the
            # place for a user's private addresses.
            {"userId": principal.user_id, "changed": changed},
        )
    elif target in s.new:
        s.expunge(target)  # nothing to store
    return _channels_out(s, settings, principal.user_id)


def rotate_webhook_secret(uow: Uow, settings: Settings, principal: Principal) -> ChannelsOut:
    s = uow.session
    target = s.get(NotificationTarget, principal.user_id, with_for_update=True)
    if target is None or target.webhook_url is None:
        raise Conflict("Set a webhook URL first", code="NO_WEBHOOK")
    target.webhook_secret = new_webhook_secret()
    target.updated_at = uow.now
    s.flush()
    uow.emit(
        EventType.notification_channels_updated,
        "user",
        principal.user_id,
        {"userId": principal.user_id, "changed": ["webhookSecret"]},
    )
    return _channels_out(s, settings, principal.user_id)


# --- the delivery queue, for admins ----------------------------------------------------------------


def list_deliveries(
    db: Session,
    *,
    status: DeliveryStatus | None,
    channel: Channel | None,
    user_id: int | None,
    page: int,
    page_size: int,
) -> tuple[list[NotificationDelivery], int]:
    conds = []
    if status is not None:
        conds.append(NotificationDelivery.status == status.value)
    if channel is not None:
        conds.append(NotificationDelivery.channel == channel.value)
    if user_id is not None:
        conds.append(NotificationDelivery.user_id == user_id)
    total = db.execute(select(func.count()).select_from(NotificationDelivery).where(*conds)).scalar_one()
    rows = db.execute(
        select(NotificationDelivery)
        .where(*conds)
        .order_by(NotificationDelivery.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).scalars()
    return list(rows), total


def requeue_delivery(uow: Uow, delivery_id: int) -> NotificationDelivery:
    """Sends a dead delivery again with a fresh set of attempts, or a failed one now."""
    s = uow.session
    row = s.get(NotificationDelivery, delivery_id, with_for_update=True)
    if row is None:
        raise NotFound("Delivery", delivery_id)
    if row.status not in (DeliveryStatus.dead.value, DeliveryStatus.failed.value):
        raise InvalidTransition("delivery", row.status, "retry")
    was = row.status
    if was == DeliveryStatus.dead.value:
        row.status = DeliveryStatus.pending.value
        row.attempts = 0
    row.next_attempt_at = uow.now
    row.updated_at = uow.now
    s.flush()
    uow.emit(
        EventType.notification_delivery_requeued,
        "notification_delivery",
        row.id,
        {"userId": row.user_id, "channel": row.channel, "type": row.type, "from": was},
    )
    return row


def delivery_stats(db: Session, settings: Settings, now: datetime) -> DeliveryStatsOut:
    stats = {c.value: ChannelStatsOut() for c in EXTERNAL_CHANNELS}
    total = ChannelStatsOut()
    finished = (DeliveryStatus.delivered.value, DeliveryStatus.dead.value)
    attempts: dict[str, tuple[int, int]] = {}  # channel -> (finished rows, their attempts)
    for channel, status, count, attempt_sum in db.execute(
        select(D.channel, D.status, func.count(), func.coalesce(func.sum(D.attempts), 0)).group_by(
            D.channel, D.status
        )
    ):
        st = stats.setdefault(channel, ChannelStatsOut())
        if status in STATUSES:
            setattr(st, status, getattr(st, status) + count)
            setattr(total, status, getattr(total, status) + count)
        if status in finished:
            n, a = attempts.get(channel, (0, 0))
            attempts[channel] = (n + count, a + int(attempt_sum))
    hour, day = now - timedelta(hours=1), now - timedelta(days=1)
    recent = db.execute(
        select(
            D.channel,
            func.coalesce(func.sum(case((D.delivered_at >= hour, 1), else_=0)), 0),
            func.count(),
        )
        .where(D.status == DeliveryStatus.delivered.value, D.delivered_at >= day)
        .group_by(D.channel)
    ).all()
    for channel, last_hour, last_day in cast("list[tuple[str, int, int]]", recent):
        st = stats.setdefault(channel, ChannelStatsOut())
        st.delivered_last_hour, st.delivered_last_day = int(last_hour), int(last_day)
        total.delivered_last_hour += int(last_hour)
        total.delivered_last_day += int(last_day)
    oldest_overall: datetime | None = None
    for channel, oldest in db.execute(
        select(D.channel, func.min(D.created_at)).where(D.status.in_(OPEN_STATUSES)).group_by(D.channel)
    ):
        if oldest is None:
            continue
        stats.setdefault(channel, ChannelStatsOut()).oldest_pending_age_seconds = max(
            0.0, (now - oldest).total_seconds()
        )
        oldest_overall = oldest if oldest_overall is None else min(oldest_overall, oldest)
    if oldest_overall is not None:
        total.oldest_pending_age_seconds = max(0.0, (now - oldest_overall).total_seconds())
    for channel, (n, a) in attempts.items():
        stats[channel].average_attempts = round(a / n, 2) if n else None
    n_all, a_all = sum(n for n, _ in attempts.values()), sum(a for _, a in attempts.values())
    total.average_attempts = round(a_all / n_all, 2) if n_all else None
    token = settings.telegram_bot_token
    return DeliveryStatsOut(
        as_of=now,
        channels=stats,
        total=total,
        dead_letters=total.dead,
        configured={
            Channel.email.value: email_channel.configured(settings),
            Channel.webhook.value: True,
            Channel.telegram.value: token is not None and bool(token.get_secret_value()),
        },
    )
