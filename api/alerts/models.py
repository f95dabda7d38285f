from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, BigId, pk


class PriceAlert(Base):
    """Seed 001 §4."""

    __tablename__ = "price_alerts"
    # The price-change check reads the active, un-notified alerts of one product.
    __table_args__ = (
        Index("ix_price_alerts_product_active", "product_id", "is_active", "notified"),
        # One active alert per user and product, even under concurrent requests.
        Index(
            "uq_price_alerts_user_product_active",
            "user_id",
            "product_id",
            unique=True,
            sqlite_where=text("is_active"),
            postgresql_where=text("is_active"),
        ),
    )

    id: Mapped[int] = pk()
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(BigId, ForeignKey("products.id", ondelete="CASCADE"), index=True)
    target_price: Mapped[Decimal]
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    notified: Mapped[bool] = mapped_column(Boolean, default=False)
    triggered_price: Mapped[Decimal | None]
    triggered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(index=True)
