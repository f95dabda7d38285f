"""AI answers (camelCase JSON). Money leaves as a decimal string with the warehouse's 8 places."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from api.analytics.schemas import FreshnessOut, Money
from api.core.schemas import ResponseModel


class PriceSuggestionOut(ResponseModel):
    """The price model's suggestion for one product. `referencePrice`: the median price of its
    category's active products; probabilities: that a view ends in a purchase, at today's price and at
    the recommended one (averaged over the week); revenue per 100 views at each;
    `expectedRevenueChange` the difference (absolute, the product's currency) and
    `expectedRevenueChangePct` relative (0.12 = +12 %). `modelVersion`: the registry version of the
    price model; `trainedAt`: when it was trained."""

    product_id: int
    shop_id: int | None
    currency: str
    current_price: Money
    reference_price: Money
    recommended_price: Money
    purchase_probability: float
    recommended_purchase_probability: float
    revenue_per_100_views: Money
    recommended_revenue_per_100_views: Money
    expected_revenue_change: Money
    expected_revenue_change_pct: float
    model_version: str
    trained_at: datetime | None
    freshness: FreshnessOut


class InsightOut(ResponseModel):
    """One finding: `kind` (revenue_change, segment_shift, sell_out, anomaly), a `title` to read as
    is, `text` saying what it rests on, `score` (0..1, comparable across kinds), what it is about
    (`shopId`, `productId`, `subject`) and the `numbers` behind it (money as decimal strings)."""

    rank: int
    kind: str
    title: str
    text: str
    score: float
    shop_id: int | None
    product_id: int | None
    subject: dict[str, Any]
    numbers: dict[str, Any]


class InsightsOut(ResponseModel):
    """The ranked insights the caller may read (staff: all; a shop owner: those about their shops)."""

    insights: list[InsightOut]
    generated_at: datetime | None
    model_version: str
    freshness: FreshnessOut
