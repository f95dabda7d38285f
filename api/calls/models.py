from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, BigId, pk


class CallStatus(StrEnum):
    """Seed 001 §1."""

    initiated = "initiated"
    ringing = "ringing"
    active = "active"
    ended = "ended"
    missed = "missed"
    rejected = "rejected"


class VideoCall(Base):
    __tablename__ = "video_calls"
    __table_args__ = (
        # Call history: a user's calls as caller or as receiver, newest first (migration 0003).
        Index("ix_video_calls_caller_created", "caller_id", "created_at"),
        Index("ix_video_calls_receiver_created", "receiver_id", "created_at"),
    )

    id: Mapped[int] = pk()
    caller_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    receiver_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("conversations.id"), index=True)
    call_type: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default=CallStatus.initiated.value, index=True)
    duration: Mapped[int | None]
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(index=True)
