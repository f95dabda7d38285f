from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, BigId, pk


class Role(StrEnum):
    buyer = "buyer"
    seller = "seller"
    analyst = "analyst"
    admin = "admin"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = pk()
    email: Mapped[str] = mapped_column(String(254), unique=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.buyer.value, index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_login_count: Mapped[int] = mapped_column(default=0)
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]


class UserSession(Base):
    """Seed 001 §6. One row per login; the refresh token's hash rotates on each refresh."""

    __tablename__ = "user_sessions"
    __table_args__ = (Index("ix_user_sessions_active_activity", "is_online", "last_activity"),)

    id: Mapped[int] = pk()
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_token: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    device_info: Mapped[dict[str, Any]]
    ip_address: Mapped[str | None] = mapped_column(String(45))
    is_online: Mapped[bool] = mapped_column(Boolean, default=True)
    last_activity: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(index=True)
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    # logout | revoked | expired | refresh_expired
    end_reason: Mapped[str | None] = mapped_column(String(24))
