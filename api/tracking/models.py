from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, BigId, pk


class ProductView(Base):
    """Seed 001 §2."""

    __tablename__ = "product_views"
    __table_args__ = (
        Index("ix_product_views_product_created", "product_id", "created_at"),
        # The fraud features count a buyer's views of the last day at order time (api/orders/fraud.py).
        Index("ix_product_views_user_created", "user_id", "created_at"),
    )

    id: Mapped[int] = pk()
    product_id: Mapped[int] = mapped_column(BigId, ForeignKey("products.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    session_id: Mapped[str | None] = mapped_column(String(64), index=True)
    ip_address: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    referrer: Mapped[str | None] = mapped_column(String(512))
    duration: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(index=True)
