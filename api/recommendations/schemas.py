"""Response bodies of the recommendations endpoints (documentation: the handlers send cached bytes)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from api.core.schemas import ResponseModel


class RecommendedProduct(ResponseModel):
    """What a card needs. `imageUrl` only when the product has one (products have no image yet)."""

    id: int
    name: str
    price: Decimal  # a decimal string on the wire
    currency: str
    shop_id: int
    category_id: int | None
    rating: float
    image_url: str | None = None


class RecommendationItem(ResponseModel):
    product_id: int
    score: float
    reason: str  # popular_in_your_categories, similar_to_your_items, trending, ...
    product: RecommendedProduct


class RecommendationsOut(ResponseModel):
    user_id: int
    # model: the pipeline's stored rows (topped up with trending); seed: seed 001 §3 computed live from
    # the user's browsing history (no stored rows yet); trending: cold start without history.
    source: Literal["model", "seed", "trending"]
    model_version: str | None
    items: list[RecommendationItem]
