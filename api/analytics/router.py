"""GET /api/analytics/shop/{shopId} (seed 001 §2, §7) and GET /api/analytics/dashboard (seed 000), read
from the warehouse's marts. Handlers are sync: the warehouse reads block, so they run in the pool."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from api.analytics import service
from api.analytics.access import StaffUser, may_read_shop
from api.analytics.cache import AnalyticsCache
from api.analytics.schemas import DashboardOut, PeriodQuery, ShopAnalyticsOut
from api.core.deps import CurrentUser, ReadDb
from api.core.errors import Forbidden
from api.core.query import query_docs, query_model
from api.core.responses import Envelope, EnvelopeResponse, ok
from api.shops.service import get_shop

router = APIRouter(prefix="/api/analytics", tags=["analytics"])

Period = Annotated[PeriodQuery, Depends(query_model(PeriodQuery))]
ShopId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _cache(request: Request) -> AnalyticsCache:
    cache: AnalyticsCache = request.app.state.analytics_cache
    return cache


@router.get(
    "/shop/{shop_id}",
    response_model=Envelope[ShopAnalyticsOut],
    openapi_extra=query_docs(PeriodQuery),
    responses={503: {"description": "The warehouse is not built yet: run the pipeline"}},
)
def shop_analytics(
    shop_id: ShopId, principal: CurrentUser, db: ReadDb, query: Period, request: Request
) -> EnvelopeResponse:
    """A shop's daily numbers over a period, their totals and the previous period's: for the shop's
    owner, analysts and admins."""
    try:
        shop = get_shop(db, shop_id)
        if not may_read_shop(principal, shop.owner_id):
            raise Forbidden("Only the shop's owner, analysts and admins can read its analytics")
        db.expunge(shop)
    finally:
        db.close()  # back to the pool before the warehouse read
    state = request.app.state
    period = service.resolve_period(query, state.clock.now().date())
    answer = service.shop_analytics(state.settings, _cache(request), shop, period, service.wall_now())
    return ok(answer)


@router.get(
    "/dashboard",
    response_model=Envelope[DashboardOut],
    openapi_extra=query_docs(PeriodQuery),
    responses={503: {"description": "The warehouse is not built yet: run the pipeline"}},
)
def dashboard(principal: StaffUser, db: ReadDb, query: Period, request: Request) -> EnvelopeResponse:
    """Platform KPIs, daily series, revenue and top shops and products over a period (default: the
    last 30 days): for analysts and admins."""
    state = request.app.state
    period = service.resolve_period(query, state.clock.now().date())
    try:
        answer = service.dashboard(state.settings, _cache(request), db, period, service.wall_now())
    finally:
        db.close()
    return ok(answer)
