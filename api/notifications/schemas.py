from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, Strict, model_validator

from api.core.schemas import RequestModel, ResponseModel
from api.notifications.models import Channel, NotificationType

# Enums arrive as their JSON string values; strict mode would otherwise want enum instances.
TypeIn = Annotated[NotificationType, Strict(False)]
ChannelIn = Annotated[Channel, Strict(False)]


class NotificationOut(ResponseModel):
    id: int
    type: str
    title: str
    body: str
    data: dict[str, Any]
    is_read: bool
    read_at: datetime | None
    created_at: datetime


class UnreadCountOut(ResponseModel):
    unread_count: int


class ReadAllOut(ResponseModel):
    marked_read: int
    unread_count: int


class PreferenceIn(RequestModel):
    type: TypeIn
    channel: ChannelIn
    enabled: bool


class PreferencesIn(RequestModel):
    preferences: Annotated[
        list[PreferenceIn], Field(min_length=1, max_length=len(NotificationType) * len(Channel))
    ]

    @model_validator(mode="after")
    def _no_duplicates(self) -> PreferencesIn:
        seen = {(p.type, p.channel) for p in self.preferences}
        if len(seen) != len(self.preferences):
            raise ValueError("each (type, channel) pair may appear once")
        return self


class PreferenceOut(ResponseModel):
    type: str
    channel: str
    enabled: bool


# --- channel targets ----------------------------------------------------------------------------------

# A numeric chat id (negative for groups and channels) or a public @channelusername.
TELEGRAM_CHAT_ID = r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$"


class ChannelsIn(RequestModel):
    """Absent fields stay as they are; null removes the target."""

    webhook_url: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    telegram_chat_id: Annotated[str, Field(pattern=TELEGRAM_CHAT_ID)] | None = None


class ChannelsOut(ResponseModel):
    email: str
    # Whether this server can send through the channel at all (SMTP host, bot token configured).
    email_available: bool
    webhook_url: str | None
    # The HMAC key of X-Store-Signature; readable by its owner only, rotated on request.
    webhook_secret: str | None
    telegram_chat_id: str | None
    telegram_available: bool


# --- delivery queue (admin) ------------------------------------------------------------------------


class DeliveryOut(ResponseModel):
    id: int
    notification_id: int | None
    user_id: int
    channel: str
    target: str
    type: str
    title: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class ChannelStatsOut(ResponseModel):
    pending: int = 0
    sending: int = 0
    failed: int = 0  # waiting for a retry
    delivered: int = 0
    dead: int = 0
    delivered_last_hour: int = 0
    delivered_last_day: int = 0
    # Attempts per finished (delivered or dead) delivery.
    average_attempts: float | None = None
    oldest_pending_age_seconds: float | None = None


class DeliveryStatsOut(ResponseModel):
    as_of: datetime
    channels: dict[str, ChannelStatsOut]
    total: ChannelStatsOut
    dead_letters: int
    configured: dict[str, bool]
