"""AI answers read from the warehouse's ml tables (`warehouse.ml_outputs`), cached per published
warehouse as the analytics are. Before the first training run there is nothing to read: 503."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from api.ai.schemas import InsightOut, InsightsOut, PriceSuggestionOut
from api.analytics.cache import POSTGRES_TTL_SECONDS, AnalyticsCache
from api.analytics.service import WarehouseNotReady, aged, freshness_out, warehouse_errors
from api.core.errors import NotFound
from api.core.settings import Settings
from warehouse import marts, ml_outputs

T = TypeVar("T")
TRAIN_FIRST = "no model has been trained yet: run the train job (`store pipeline --job train`)"


def identity(settings: Settings) -> str:
    """The key of cached answers. DuckDB: the snapshot's identity (a training run publishes a new
    one). PostgreSQL: the marts' identity does not cover the ml schema, so the newest training run is
    added."""
    base = marts.published_identity(settings)
    if not settings.warehouse_url:
        return base
    with marts.open_marts(settings) as reader:
        ((latest,),) = reader.fetch("SELECT CAST(max(trained_at) AS TEXT) FROM ml.model_runs")
    return f"{base}|ml:{latest}"


def _cached(
    settings: Settings, cache: AnalyticsCache, key: tuple[object, ...], compute: Callable[[], T]
) -> T:
    with warehouse_errors():
        ident = identity(settings)
        ttl = POSTGRES_TTL_SECONDS if settings.warehouse_url else None
        return cache.get_or_compute(ident, ("ai", *key), compute, ttl=ttl)


def price_suggestion(
    settings: Settings, cache: AnalyticsCache, product_id: int, currency: str, now: datetime
) -> PriceSuggestionOut:
    """The suggestion for a product the caller may see (checked by the router)."""

    def compute() -> PriceSuggestionOut | None:
        with marts.open_marts(settings) as reader:
            run = ml_outputs.latest_good_run(reader, "price")
            if run is None:
                raise WarehouseNotReady(TRAIN_FIRST)
            found = ml_outputs.price_suggestion(reader, product_id)
            fresh = marts.freshness(reader, settings)
        if found is None:
            return None
        return PriceSuggestionOut(
            product_id=found.product_id,
            shop_id=found.shop_id,
            currency=currency,
            current_price=found.current_price,
            reference_price=found.reference_price,
            recommended_price=found.recommended_price,
            purchase_probability=found.purchase_probability,
            recommended_purchase_probability=found.recommended_purchase_probability,
            revenue_per_100_views=found.revenue_per_100_views,
            recommended_revenue_per_100_views=found.recommended_revenue_per_100_views,
            expected_revenue_change=found.expected_revenue_change,
            expected_revenue_change_pct=found.expected_revenue_change_pct,
            model_version=found.model_version,
            trained_at=run.trained_at if run.version == found.model_version else None,
            freshness=freshness_out(fresh),
        )

    answer = _cached(settings, cache, ("price", product_id, currency), compute)
    if answer is None:
        # Known to the store, but not priced by the last good model: new since, inactive, or without a
        # category (the model prices against the category's reference).
        raise NotFound("Price suggestion for product", product_id, code="PRICE_SUGGESTION_NOT_FOUND")
    return answer.model_copy(update={"freshness": aged(answer.freshness, now)})


def insights(
    settings: Settings, cache: AnalyticsCache, shop_ids: Sequence[int] | None, now: datetime
) -> InsightsOut:
    """Every insight (`shop_ids` None: staff) or those about the given shops."""
    scope = None if shop_ids is None else tuple(sorted(shop_ids))

    def compute() -> InsightsOut:
        with marts.open_marts(settings) as reader:
            run = ml_outputs.latest_good_run(reader, "insights")
            if run is None:
                raise WarehouseNotReady(TRAIN_FIRST)
            found = ml_outputs.insights(reader, scope)
            fresh = marts.freshness(reader, settings)
        return InsightsOut(
            insights=[
                InsightOut(
                    rank=i.rank,
                    kind=i.kind,
                    title=i.title,
                    text=i.text,
                    score=i.score,
                    shop_id=i.shop_id,
                    product_id=i.product_id,
                    subject=i.subject,
                    numbers=i.numbers,
                )
                for i in found
            ],
            generated_at=run.trained_at,
            model_version=run.version,
            freshness=freshness_out(fresh),
        )

    answer = _cached(settings, cache, ("insights", scope), compute)
    return answer.model_copy(update={"freshness": aged(answer.freshness, now)})
