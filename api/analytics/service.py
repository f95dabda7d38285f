"""Analytics answers built from the marts (`warehouse.marts`), cached per published warehouse.

Periods are inclusive UTC days. Each answer carries its freshness; a warehouse that is not built (or
not reachable) is a 503 telling the caller to run the pipeline, never a 500."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.analytics.cache import POSTGRES_TTL_SECONDS, AnalyticsCache
from api.analytics.schemas import (
    DEFAULT_RANGE_DAYS,
    MAX_RANGE_DAYS,
    TOP_LIMIT,
    CurrencyRevenueOut,
    DashboardOut,
    FreshnessOut,
    PeriodQuery,
    PlatformDayOut,
    PlatformKpisOut,
    PlatformPeriodOut,
    RevenueDayOut,
    ShopAnalyticsOut,
    ShopDayOut,
    ShopPeriodOut,
    ShopTotalsOut,
    TopProductOut,
    TopShopOut,
)
from api.catalog.models import Product
from api.core.errors import ApiError, ValidationFailed
from api.core.settings import Settings
from api.shops.models import Shop
from warehouse import marts
from warehouse.duckdb import WarehouseUnavailable

T = TypeVar("T")


class WarehouseNotReady(ApiError):
    status_code = 503
    code = "WAREHOUSE_UNAVAILABLE"

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"Analytics are not available yet: {reason}",
            details={"hint": "Run the pipeline (`store pipeline`) to build the warehouse"},
            headers={"Retry-After": "60"},
        )


@contextmanager
def warehouse_errors() -> Iterator[None]:
    """WarehouseUnavailable as the API's 503."""
    try:
        yield
    except WarehouseUnavailable as exc:
        raise WarehouseNotReady(str(exc)) from exc


# --- periods --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same length that ends the day before this one starts."""
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        f"Invalid request: {field}: {message}",
        details=[{"field": field, "message": message, "type": "value_error", "in": "query"}],
    )


def resolve_period(query: PeriodQuery, today: date) -> Period:
    """The query's period with its defaults (see PeriodQuery), or a 422."""
    end = query.end_date or today
    start = query.start_date or end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if end < start:
        raise _invalid("endDate", f"must not be before startDate ({start.isoformat()})")
    period = Period(start, end)
    if period.days > MAX_RANGE_DAYS:
        raise _invalid("endDate", f"the period may span at most {MAX_RANGE_DAYS} days, not {period.days}")
    try:
        period.previous()
    except OverflowError:
        raise _invalid("startDate", "is too early to compare with a previous period") from None
    return period


def change_percent(current: float | Decimal | None, previous: float | Decimal | None) -> float | None:
    """Relative change in percent; None when there is nothing to compare with."""
    if current is None or previous is None or previous == 0:
        return None
    return round(float((Decimal(str(current)) - Decimal(str(previous))) / Decimal(str(previous)) * 100), 4)


# --- caching and freshness ------------------------------------------------------------------------


def _cached(settings: Settings, cache: AnalyticsCache, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
    with warehouse_errors():
        identity = marts.published_identity(settings)
        ttl = POSTGRES_TTL_SECONDS if settings.warehouse_url else None
        return cache.get_or_compute(identity, key, compute, ttl=ttl)


def freshness_out(fresh: marts.Freshness) -> FreshnessOut:
    return FreshnessOut(
        source=fresh.target,
        loaded_at=fresh.loaded_at,
        age_seconds=None,
        events_loaded_at=fresh.events_loaded_at,
        data_through=fresh.data_through,
        published_at=fresh.published_at,
    )


def aged(fresh: FreshnessOut, now: datetime) -> FreshnessOut:
    """The freshness with its age as of `now` (wall time: loads are stamped with wall time)."""
    if fresh.loaded_at is None:
        return fresh
    age = max(0.0, (now - fresh.loaded_at).total_seconds())
    return fresh.model_copy(update={"age_seconds": round(age, 3)})


def wall_now() -> datetime:
    return datetime.now(UTC)


# --- a shop ---------------------------------------------------------------------------------------


def _shop_totals_out(totals: marts.ShopTotals) -> ShopTotalsOut:
    return ShopTotalsOut(
        days=totals.days,
        views=totals.views,
        unique_visitors=totals.unique_visitors,
        product_views=totals.product_views,
        messages_received=totals.messages_received,
        orders=totals.orders,
        paid_orders=totals.paid_orders,
        revenue=totals.revenue,
        currency=totals.currency,
        revenue_by_currency=dict(totals.revenue_by_currency),
        new_followers=totals.new_followers,
        conversion_rate=totals.conversion_rate,
        avg_order_value=totals.avg_order_value,
    )


def _shop_day_out(day: marts.ShopDay) -> ShopDayOut:
    return ShopDayOut(
        date=day.day,
        currency=day.currency,
        views=day.views,
        unique_visitors=day.unique_visitors,
        product_views=day.product_views,
        messages_received=day.messages_received,
        orders=day.orders,
        paid_orders=day.paid_orders,
        revenue=day.revenue,
        new_followers=day.new_followers,
        conversion_rate=day.conversion_rate,
        avg_order_value=day.avg_order_value,
    )


_SHOP_CHANGES = (
    "views",
    "unique_visitors",
    "product_views",
    "messages_received",
    "orders",
    "paid_orders",
    "revenue",
    "new_followers",
    "conversion_rate",
    "avg_order_value",
)


def _changes(current: Any, previous: Any, names: Sequence[str]) -> dict[str, float | None]:
    return {_camel(name): change_percent(getattr(current, name), getattr(previous, name)) for name in names}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def shop_analytics(
    settings: Settings, cache: AnalyticsCache, shop: Shop, period: Period, now: datetime
) -> ShopAnalyticsOut:
    def compute() -> ShopAnalyticsOut:
        previous = period.previous()
        with marts.open_marts(settings) as reader:
            days = marts.shop_days(reader, shop.id, period.start, period.end)
            before = marts.shop_days(reader, shop.id, previous.start, previous.end)
            fresh = marts.freshness(reader, settings)
        totals, prior = marts.shop_totals(days), marts.shop_totals(before)
        return ShopAnalyticsOut(
            shop_id=shop.id,
            shop_name="",  # the store's current name, filled per request
            start_date=period.start,
            end_date=period.end,
            totals=_shop_totals_out(totals),
            previous=ShopPeriodOut(
                start_date=previous.start, end_date=previous.end, totals=_shop_totals_out(prior)
            ),
            change=_changes(totals, prior, _SHOP_CHANGES),
            series=[_shop_day_out(d) for d in days],
            freshness=freshness_out(fresh),
        )

    answer = _cached(settings, cache, ("shop", shop.id, period.start, period.end), compute)
    return answer.model_copy(update={"shop_name": shop.name, "freshness": aged(answer.freshness, now)})


# --- the platform ---------------------------------------------------------------------------------


def _kpis(days: Sequence[marts.PlatformDay], revenue: Sequence[marts.RevenueDay]) -> PlatformKpisOut:
    totals = marts.platform_totals(days)
    currencies = marts.revenue_by_currency(revenue)
    single = currencies[0] if len(currencies) == 1 else None
    return PlatformKpisOut(
        days=totals.days,
        active_user_days=totals.active_user_days,
        avg_daily_active_users=round(totals.avg_daily_active_users, 4),
        peak_daily_active_users=totals.peak_daily_active_users,
        new_users=totals.new_users,
        buyers=totals.buyers,
        orders=totals.orders,
        paid_orders=totals.paid_orders,
        revenue=single.revenue if single else (marts.money(0) if not currencies else None),
        currency=single.currency if single else None,
        avg_order_value=single.avg_order_value if single else None,
        revenue_by_currency=[
            CurrencyRevenueOut(
                currency=c.currency,
                orders=c.orders,
                paid_orders=c.paid_orders,
                revenue=c.revenue,
                avg_order_value=c.avg_order_value,
            )
            for c in currencies
        ],
        conversion_rate=totals.conversion_rate,
        churned_users=totals.churned_users,
        churn_rate=totals.churn_rate,
    )


_PLATFORM_CHANGES = (
    "active_user_days",
    "avg_daily_active_users",
    "new_users",
    "buyers",
    "orders",
    "paid_orders",
    "revenue",
    "avg_order_value",
    "conversion_rate",
    "churned_users",
)


def dashboard(
    settings: Settings, cache: AnalyticsCache, db: Session, period: Period, now: datetime
) -> DashboardOut:
    def compute() -> DashboardOut:
        previous = period.previous()
        with marts.open_marts(settings) as reader:
            days = marts.platform_days(reader, period.start, period.end)
            revenue = marts.revenue_days(reader, period.start, period.end)
            days_before = marts.platform_days(reader, previous.start, previous.end)
            revenue_before = marts.revenue_days(reader, previous.start, previous.end)
            shops = marts.top_shops(reader, period.start, period.end, limit=TOP_LIMIT)
            products = marts.top_products(reader, period.start, period.end, limit=TOP_LIMIT)
            fresh = marts.freshness(reader, settings)
        kpis, prior = _kpis(days, revenue), _kpis(days_before, revenue_before)
        return DashboardOut(
            start_date=period.start,
            end_date=period.end,
            kpis=kpis,
            previous=PlatformPeriodOut(start_date=previous.start, end_date=previous.end, kpis=prior),
            change=_changes(kpis, prior, _PLATFORM_CHANGES),
            series=[
                PlatformDayOut(
                    date=d.day,
                    active_users=d.active_users,
                    new_users=d.new_users,
                    buyers=d.buyers,
                    orders=d.orders,
                    paid_orders=d.paid_orders,
                    revenue=d.revenue,
                    avg_order_value=d.avg_order_value,
                    conversion_rate=d.conversion_rate,
                    churned_users=d.churned_users,
                    churn_rate=d.churn_rate,
                )
                for d in days
            ],
            revenue=[
                RevenueDayOut(
                    date=r.day,
                    currency=r.currency,
                    orders=r.orders,
                    paid_orders=r.paid_orders,
                    revenue=r.revenue,
                    avg_order_value=r.avg_order_value,
                    cumulative_revenue=r.cumulative_revenue,
                )
                for r in revenue
            ],
            top_shops=[
                TopShopOut(
                    shop_id=s.shop_id,
                    name=None,
                    currency=s.currency,
                    orders=s.orders,
                    paid_orders=s.paid_orders,
                    revenue=s.revenue,
                    views=s.views,
                    unique_visitors=s.unique_visitors,
                    conversion_rate=s.conversion_rate,
                )
                for s in shops
            ],
            top_products=[
                TopProductOut(
                    product_id=p.product_id,
                    name=None,
                    shop_id=p.shop_id,
                    currency=p.currency,
                    units_sold=p.units_sold,
                    orders=p.orders,
                    revenue=p.revenue,
                    views=p.views,
                )
                for p in products
            ],
            freshness=freshness_out(fresh),
        )

    answer = _cached(settings, cache, ("dashboard", period.start, period.end), compute)
    return _with_names(answer, db).model_copy(update={"freshness": aged(answer.freshness, now)})


def _with_names(answer: DashboardOut, db: Session) -> DashboardOut:
    """The store's current names of the top shops and products (names are not analytics)."""
    shop_ids = {s.shop_id for s in answer.top_shops}
    product_ids = {p.product_id for p in answer.top_products}
    shop_names: dict[int, str] = {}
    product_names: dict[int, str] = {}
    if shop_ids:
        query = select(Shop.id, Shop.name).where(Shop.id.in_(shop_ids))
        shop_names = {row.id: row.name for row in db.execute(query)}
    if product_ids:
        products = select(Product.id, Product.name).where(Product.id.in_(product_ids))
        product_names = {row.id: row.name for row in db.execute(products)}
    return answer.model_copy(
        update={
            "top_shops": [s.model_copy(update={"name": shop_names.get(s.shop_id)}) for s in answer.top_shops],
            "top_products": [
                p.model_copy(update={"name": product_names.get(p.product_id)}) for p in answer.top_products
            ],
        }
    )
