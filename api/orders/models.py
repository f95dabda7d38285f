from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, BigId, pk


class OrderStatus(StrEnum):
    pending = "pending"
    paid = "paid"
    shipped = "shipped"
    delivered = "delivered"
    cancelled = "cancelled"


class ReviewStatus(StrEnum):
    """Fraud review of an order (null: never held). A held order stays pending but cannot be paid."""

    held = "held"
    released = "released"
    rejected = "rejected"


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_buyer_created", "buyer_id", "created_at"),
        Index("ix_orders_shop_created", "shop_id", "created_at"),
    )

    id: Mapped[int] = pk()
    buyer_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    shop_id: Mapped[int] = mapped_column(BigId, ForeignKey("shops.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.pending.value, index=True)
    total_amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(10))
    payment_tx_hash: Mapped[str | None] = mapped_column(String(128))
    payment_chain: Mapped[str | None] = mapped_column(String(32))
    shipping_address: Mapped[str | None] = mapped_column(Text)
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    cancel_reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]
    shipped_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    # Fraud scoring at placement (api/orders/fraud.py): null when no model was serving.
    fraud_score: Mapped[float | None]
    fraud_model_version: Mapped[str | None] = mapped_column(String(64))
    review_status: Mapped[str | None] = mapped_column(String(16), index=True)
    reviewed_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None]


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        UniqueConstraint("order_id", "product_id"),
    )

    id: Mapped[int] = pk()
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(BigId, ForeignKey("products.id"), index=True)
    quantity: Mapped[int]
    unit_price: Mapped[Decimal]
    line_total: Mapped[Decimal]
    created_at: Mapped[datetime]


class IdempotencyKey(Base):
    """Remembers the first response to `POST /api/orders` per (user, Idempotency-Key)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = pk()
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
