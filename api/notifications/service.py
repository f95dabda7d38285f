"""In-app notifications (seed 001 §9): created by other domains inside their own transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from api.core.deps import Principal
from api.core.errors import NotFound
from api.notifications.models import Channel, Notification, NotificationPreference, NotificationType
from api.notifications.schemas import PreferencesIn
from api.outbox.service import Uow
from api.outbox.types import EventType


def channel_enabled(uow: Uow, user_id: int, ntype: NotificationType, channel: Channel) -> bool:
    """A notification type is on for a channel unless the user turned it off."""
    enabled = uow.session.execute(
        select(NotificationPreference.enabled).where(
            NotificationPreference.user_id == user_id,
            NotificationPreference.type == ntype.value,
            NotificationPreference.channel == channel.value,
        )
    ).scalar_one_or_none()
    return True if enabled is None else bool(enabled)


def notify(
    uow: Uow,
    user_id: int,
    ntype: NotificationType,
    title: str,
    body: str = "",
    data: dict[str, Any] | None = None,
) -> Notification | None:
    """Creates an in-app notification (with its event) unless the user turned that type off."""
    if not channel_enabled(uow, user_id, ntype, Channel.in_app):
        return None
    note = Notification(
        user_id=user_id,
        type=ntype.value,
        title=title[:200],
        body=body,
        data=data or {},
        is_read=False,
        created_at=uow.now,
    )
    uow.session.add(note)
    uow.session.flush()
    uow.emit(
        EventType.notification_created,
        "notification",
        note.id,
        {"userId": user_id, "type": ntype.value, "data": data or {}},
    )
    return note


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
