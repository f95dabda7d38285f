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
