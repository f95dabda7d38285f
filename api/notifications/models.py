from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, BigId, pk


class NotificationType(StrEnum):
    """Seed 001 §9."""

    order_update = "order_update"
    new_message = "new_message"
    new_follower = "new_follower"
    price_alert = "price_alert"
    call = "call"
    system = "system"


class Channel(StrEnum):
    """Where a notification can go. In-app is the notifications table (and /ws); the others are
    delivered by the worker from `notification_deliveries`."""

    in_app = "in_app"
    email = "email"
    webhook = "webhook"
    telegram = "telegram"


EXTERNAL_CHANNELS = (Channel.email, Channel.webhook, Channel.telegram)


class DeliveryStatus(StrEnum):
    pending = "pending"  # queued, never tried
    sending = "sending"  # claimed by a worker; next_attempt_at is the end of its lease
    failed = "failed"  # tried and failed; retried at next_attempt_at
    delivered = "delivered"
    dead = "dead"  # gave up: max attempts, or a failure no retry can fix


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_read_created", "user_id", "is_read", "created_at"),)

    id: Mapped[int] = pk()
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(24), index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]]
    is_read: Mapped[bool] = mapped_column(Boolean, default=False)
    read_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(index=True)


class NotificationPreference(Base):
    __tablename__ = "notification_preferences"
    __table_args__ = (UniqueConstraint("user_id", "type", "channel"),)

    id: Mapped[int] = pk()
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(24))
    channel: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime]


class NotificationTarget(Base):
    """A user's own addresses for the webhook and Telegram channels (email goes to users.email)."""

    __tablename__ = "notification_targets"

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    # HMAC key of the webhook signature. Kept in clear because we must sign with it; the owner can
    # read it back and rotate it.
    webhook_secret: Mapped[str | None] = mapped_column(String(128))
    telegram_chat_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class NotificationDelivery(Base):
    """One notification on its way to one external channel: the durable delivery queue.

    The content is copied in, so a delivery does not depend on the in-app row (which exists only when
    the user keeps in-app on for that type) and a later edit cannot change what was queued."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        # The worker's claim: due rows by status and time.
        Index("ix_notification_deliveries_status_next_attempt", "status", "next_attempt_at"),
        Index("ix_notification_deliveries_channel_status", "channel", "status"),
    )

    id: Mapped[int] = pk()
    notification_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("notifications.id", ondelete="SET NULL"), index=True
    )
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(2048))
    type: Mapped[str] = mapped_column(String(24))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(12), default=DeliveryStatus.pending.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None] = mapped_column(index=True)
