from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, BigId, pk


class Conversation(Base):
    """Seed 001 §10: a buyer talks to a shop, optionally about one product. Counters are per side."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("buyer_id", "shop_id", "product_id"),
        # NULLs are distinct in the constraint above: one product-less conversation per buyer and shop.
        Index(
            "uq_conversations_buyer_shop_general",
            "buyer_id",
            "shop_id",
            unique=True,
            sqlite_where=text("product_id IS NULL"),
            postgresql_where=text("product_id IS NULL"),
        ),
        Index("ix_conversations_seller_last", "seller_id", "last_message_at"),
        Index("ix_conversations_buyer_last", "buyer_id", "last_message_at"),
    )

    id: Mapped[int] = pk()
    buyer_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    seller_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    shop_id: Mapped[int] = mapped_column(BigId, ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("products.id"), index=True)
    last_message: Mapped[str | None] = mapped_column(String(200))
    last_message_at: Mapped[datetime | None] = mapped_column(index=True)
    buyer_unread_count: Mapped[int] = mapped_column(default=0)
    seller_unread_count: Mapped[int] = mapped_column(default=0)
    buyer_archived: Mapped[bool] = mapped_column(Boolean, default=False)
    seller_archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_created", "conversation_id", "created_at"),)

    id: Mapped[int] = pk()
    conversation_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    sender_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    body: Mapped[str] = mapped_column(Text)
    message_type: Mapped[str] = mapped_column(String(16), default="text")
    attachment_url: Mapped[str | None] = mapped_column(String(512))
    is_read: Mapped[bool] = mapped_column(Boolean, default=False)
    read_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(index=True)


class UserBlock(Base):
    __tablename__ = "user_blocks"
    __table_args__ = (UniqueConstraint("blocker_id", "blocked_id"),)

    id: Mapped[int] = pk()
    blocker_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    blocked_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]


class Attachment(Base):
    """A file posted into a conversation. The bytes live on disk under `<sha256[:2]>/<sha256>`, so
    identical uploads share one file; each upload still has its own row and message."""

    __tablename__ = "attachments"

    id: Mapped[int] = pk()
    conversation_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    # NULL only inside the uploading transaction: the message's URL needs this row's id first.
    message_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    uploader_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    original_name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
