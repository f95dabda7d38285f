from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from api.core.schemas import RequestModel, ResponseModel


class ReviewCreate(RequestModel):
    rating: Annotated[int, Field(ge=1, le=5)]  # strict: 4.5, "4" and true are rejected
    comment: Annotated[str, Field(max_length=2000)] = ""
    title: Annotated[str, Field(min_length=1, max_length=120)] | None = None


class ReviewOut(ResponseModel):
    id: int
    product_id: int
    user_id: int
    username: str
    order_id: int
    rating: int
    title: str | None
    comment: str
    created_at: datetime


class ReviewPosted(ReviewOut):
    product_rating: float
    product_rating_count: int
