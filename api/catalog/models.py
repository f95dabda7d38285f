from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, BigId, pk


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = pk()
    name: Mapped[str] = mapped_column(String(80), unique=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    parent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("categories.id"), index=True)
    created_at: Mapped[datetime]


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_non_negative"),
        CheckConstraint("stock >= 0", name="stock_non_negative"),
        # Listing pages filter by shop/category and sort by recency, price or popularity.
        Index("ix_products_active_created", "is_active", "created_at"),
        Index("ix_products_category_active_price", "category_id", "is_active", "price"),
        Index("ix_products_shop_active_created", "shop_id", "is_active", "created_at"),
        # Listing and search pages are read in index order, never sorted: one index per sort (with
        # the id tie-break) over the whole active catalogue, one shop's and one category's products.
        # catalog.service.SORT_INDEXES names them. The "popular" sort's expression indexes
        # (... (views + sales_count), id) live in migration 0002 with the full-text index, because
        # autogenerate cannot compare expression indexes.
        Index("ix_products_active_price_id", "is_active", "price", "id"),
        Index("ix_products_active_rating_id", "is_active", "rating", "id"),
        Index("ix_products_shop_active_price_id", "shop_id", "is_active", "price", "id"),
        Index("ix_products_shop_active_rating_id", "shop_id", "is_active", "rating", "id"),
        Index("ix_products_category_active_created", "category_id", "is_active", "created_at"),
        Index("ix_products_category_active_rating_id", "category_id", "is_active", "rating", "id"),
        # Counts the in-stock filter of the listing without reading the table.
        Index("ix_products_active_stock", "is_active", "stock"),
    )

    id: Mapped[int] = pk()
    shop_id: Mapped[int] = mapped_column(BigId, ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    category_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("categories.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[Decimal] = mapped_column(index=True)
    currency: Mapped[str] = mapped_column(String(10))
    stock: Mapped[int] = mapped_column(default=0)
    views: Mapped[int] = mapped_column(default=0, index=True)
    sales_count: Mapped[int] = mapped_column(default=0)
    rating: Mapped[float] = mapped_column(Float, default=0.0, index=True)
    rating_count: Mapped[int] = mapped_column(default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]


class PriceHistory(Base):
    __tablename__ = "price_history"

    id: Mapped[int] = pk()
    product_id: Mapped[int] = mapped_column(BigId, ForeignKey("products.id", ondelete="CASCADE"), index=True)
    old_price: Mapped[Decimal]
    new_price: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(10))
    changed_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    changed_at: Mapped[datetime] = mapped_column(index=True)
