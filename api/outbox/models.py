from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, BigId, pk


class Event(Base):
    """The transactional outbox: one row per state change, written in the change's own transaction.

    `id` grows with insertion order and is what loaders page on; `event_id` is the global identity
    that consumers dedupe on."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_type_occurred", "event_type", "occurred_at"),
        Index("ix_events_entity", "entity_type", "entity_id"),
        # The fraud features count a buyer's refused logins at order time (api/orders/fraud.py).
        Index(
            "ix_events_failed_login",
            "entity_id",
            "occurred_at",
            sqlite_where=text("event_type = 'user.login_failed'"),
            postgresql_where=text("event_type = 'user.login_failed'"),
        ),
    )

    id: Mapped[int] = pk()
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    event_type: Mapped[str] = mapped_column(String(48))
    schema_version: Mapped[int] = mapped_column(default=1)
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    recorded_at: Mapped[datetime] = mapped_column(index=True)
    actor_user_id: Mapped[int | None] = mapped_column(BigId, index=True)
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int | None] = mapped_column(BigId)
    shop_id: Mapped[int | None] = mapped_column(BigId, index=True)
    product_id: Mapped[int | None] = mapped_column(BigId, index=True)
    order_id: Mapped[int | None] = mapped_column(BigId, index=True)
    request_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
