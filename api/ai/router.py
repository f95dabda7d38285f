"""GET /api/ai/price/{productId} and GET /api/ai/insights: the trained models' outputs, read from the
warehouse's ml tables. Handlers are sync: the warehouse reads block, so they run in the pool."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from sqlalchemy import select

from api.ai import service
from api.ai.schemas import InsightsOut, PriceSuggestionOut
from api.analytics.access import may_read_shop
from api.analytics.cache import AnalyticsCache
from api.analytics.service import wall_now
from api.catalog.models import Product
from api.core.deps import CurrentUser, ReadDb
from api.core.errors import Forbidden, NotFound
from api.core.responses import Envelope, EnvelopeResponse, ok
from api.shops.models import Shop

router = APIRouter(prefix="/api/ai", tags=["ai"])

ProductId = Annotated[int, Path(ge=1, le=2**63 - 1)]
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "No model trained yet, or the warehouse is not built: run the pipeline"}
}


def _cache(request: Request) -> AnalyticsCache:
    cache: AnalyticsCache = request.app.state.analytics_cache
    return cache


@router.get("/price/{product_id}", response_model=Envelope[PriceSuggestionOut], responses=_UNAVAILABLE)
def price_suggestion(
    product_id: ProductId, principal: CurrentUser, db: ReadDb, request: Request
) -> EnvelopeResponse:
    """The price model's recommended price for a product, with the purchase probability and expected
    revenue at it: for the product's shop owner, analysts and admins."""
    try:
        row = db.execute(
            select(Product.currency, Shop.owner_id)
            .join(Shop, Shop.id == Product.shop_id)
            .where(Product.id == product_id)
        ).first()
    finally:
        db.close()  # back to the pool before the warehouse read
    if row is None:
        raise NotFound("Product", product_id, code="PRODUCT_NOT_FOUND")
    currency, owner_id = row
    if not may_read_shop(principal, int(owner_id)):
        raise Forbidden("Only the product's shop owner, analysts and admins can read its price suggestion")
    state = request.app.state
    answer = service.price_suggestion(state.settings, _cache(request), product_id, str(currency), wall_now())
    return ok(answer)


@router.get("/insights", response_model=Envelope[InsightsOut], responses=_UNAVAILABLE)
def insights(principal: CurrentUser, db: ReadDb, request: Request) -> EnvelopeResponse:
    """Ranked plain-language findings (revenue changes, segment shifts, likely sell-outs, unusual
    days): analysts and admins see all of them, a shop owner those about their shops."""
    try:
        own = select(Shop.id).where(Shop.owner_id == principal.user_id)
        shop_ids = None if principal.is_staff else [int(s) for s in db.execute(own).scalars()]
    finally:
        db.close()
    if shop_ids is not None and not shop_ids:
        raise Forbidden("Analyst or admin role, or a shop of your own, required")
    state = request.app.state
    return ok(service.insights(state.settings, _cache(request), shop_ids, wall_now()))
