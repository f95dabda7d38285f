from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import Field, Strict, field_validator

from api.core.schemas import RequestModel, ResponseModel

MAX_ITEMS = 50
MAX_QUANTITY = 10_000


class OrderItemIn(RequestModel):
    product_id: Annotated[int, Field(ge=1)]
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY)]


class OrderCreate(RequestModel):
    """One order is one shop's cart: the store splits a multi-shop cart into one order per shop."""

    items: Annotated[list[OrderItemIn], Field(min_length=1, max_length=MAX_ITEMS)]
    shipping_address: Annotated[str, Field(min_length=1, max_length=1000)] | None = None

    @field_validator("items")
    @classmethod
    def _distinct_products(cls, items: list[OrderItemIn]) -> list[OrderItemIn]:
        seen: set[int] = set()
        for item in items:
            if item.product_id in seen:
                raise ValueError(f"product {item.product_id} appears twice: give one line per product")
            seen.add(item.product_id)
        return items


class PayIn(RequestModel):
    tx_hash: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    chain: Annotated[str, Field(min_length=1, max_length=32)] | None = None


class CancelIn(RequestModel):
    reason: Annotated[str, Field(max_length=255)] | None = None


class ShipIn(RequestModel):
    tracking_number: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class OrderRole(StrEnum):
    buyer = "buyer"
    seller = "seller"


class OrderItemOut(ResponseModel):
    id: int
    product_id: int
    product_name: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


class OrderOut(ResponseModel):
    id: int
    buyer_id: int
    shop_id: int
    status: str
    total_amount: Decimal
    currency: str
    payment_tx_hash: str | None
    payment_chain: str | None
    shipping_address: str | None
    tracking_number: str | None
    cancel_reason: str | None
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    # Fraud review: null (never held), held, released or rejected. The score and the model version
    # that gave it are shown to staff only (null for buyers and sellers, and when nothing scored it).
    review_status: str | None = None
    fraud_score: float | None = None
    fraud_model_version: str | None = None
    items: list[OrderItemOut]


class ReviewDecision(StrEnum):
    release = "release"
    reject = "reject"


class ReviewIn(RequestModel):
    """Staff's decision on a held order: release (it can be paid) or reject (it is cancelled)."""

    decision: Annotated[ReviewDecision, Strict(False)]  # JSON strings into the enum
    note: Annotated[str, Field(max_length=255)] | None = None
