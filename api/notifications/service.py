"""In-app notifications (seed 001 §9): created by other domains inside their own transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from api.notifications.models import Channel, Notification, NotificationPreference, NotificationType
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


def notify(uow: Uow, user_id: int, ntype: NotificationType, title: str, body: str = "",
           data: dict[str, Any] | None = None) -> Notification | None:
    """Creates an in-app notification (with its event) unless the user turned that type off."""
    if not channel_enabled(uow, user_id, ntype, Channel.in_app):
        return None
    note = Notification(user_id=user_id, type=ntype.value, title=title[:200], body=body, data=data or {},
                        is_read=False, created_at=uow.now)
    uow.session.add(note)
    uow.session.flush()
    uow.emit(EventType.notification_created, "notification", note.id,
             {"userId": user_id, "type": ntype.value, "data": data or {}})
    return note
