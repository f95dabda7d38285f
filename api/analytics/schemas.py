"""Analytics answers (camelCase JSON). Money leaves as a decimal string with the marts' 8 places."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import PlainSerializer

from api.core.query import QueryModel
from api.core.schemas import ResponseModel

# format(..., "f"): str() would write a zero of scale 8 as "0E-8".
Money = Annotated[Decimal, PlainSerializer(lambda v: format(v, "f"), return_type=str, when_used="json")]

# The longest period one answer covers (and so the previous period it is compared with).
MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30
TOP_LIMIT = 10


class PeriodQuery(QueryModel):
    """`startDate` and `endDate` (inclusive UTC days, YYYY-MM-DD). Defaults: endDate today (UTC),
    startDate 29 days before endDate (30 days); at most 366 days."""

    start_date: date | None = None
    end_date: date | None = None


class FreshnessOut(ResponseModel):
    """How fresh the numbers are. `loadedAt`: the pipeline's last committed load (what the warehouse
    knows of the store dates from then); `ageSeconds`: how long ago that was; `dataThrough`: the last
    day in the marts; `publishedAt`: when the DuckDB read snapshot was published (null on PostgreSQL);
    `source`: duckdb or postgres."""

    source: str
    loaded_at: datetime | None
    age_seconds: float | None
    events_loaded_at: datetime | None
    data_through: date | None
    published_at: datetime | None


class ShopTotalsOut(ResponseModel):
    """Sums over the period. `uniqueVisitors` adds each day's distinct visitors; `conversionRate`
    (orders / uniqueVisitors) and `avgOrderValue` (revenue / orders) are computed from the sums.
    `revenue` and `avgOrderValue` are null when the period's revenue spans several currencies (see
    `revenueByCurrency`)."""

    days: int
    views: int
    unique_visitors: int
    product_views: int
    messages_received: int
    orders: int
    paid_orders: int
    revenue: Money | None
    currency: str | None
    revenue_by_currency: dict[str, Money]
    new_followers: int
    conversion_rate: float | None
    avg_order_value: Money | None


class ShopDayOut(ResponseModel):
    date: date
    currency: str | None
    views: int
    unique_visitors: int
    product_views: int
    messages_received: int
    orders: int
    paid_orders: int
    revenue: Money
    new_followers: int
    conversion_rate: float | None
    avg_order_value: Money | None


class ShopPeriodOut(ResponseModel):
    start_date: date
    end_date: date
    totals: ShopTotalsOut


class ShopAnalyticsOut(ResponseModel):
    """A shop's days from marts.mart_shop_daily, every day of the period (zeros on days without
    activity), their totals, and the previous period of the same length. `change` is the relative
    change of each total against the previous period in percent (null when the previous one is 0)."""

    shop_id: int
    shop_name: str
    start_date: date
    end_date: date
    totals: ShopTotalsOut
    previous: ShopPeriodOut
    change: dict[str, float | None]
    series: list[ShopDayOut]
    freshness: FreshnessOut


class CurrencyRevenueOut(ResponseModel):
    currency: str
    orders: int
    paid_orders: int
    revenue: Money
    avg_order_value: Money | None


class PlatformKpisOut(ResponseModel):
    """Over the period: daily counts summed (`activeUserDays` and `buyers` count a user once a day),
    average and peak daily active users, `conversionRate` = buyers / activeUserDays, `churnRate` of
    the period's last day. Revenue per currency from marts.mart_revenue_daily; `revenue` and
    `avgOrderValue` when there is a single currency."""

    days: int
    active_user_days: int
    avg_daily_active_users: float
    peak_daily_active_users: int
    new_users: int
    buyers: int
    orders: int
    paid_orders: int
    revenue: Money | None
    currency: str | None
    avg_order_value: Money | None
    revenue_by_currency: list[CurrencyRevenueOut]
    conversion_rate: float | None
    churned_users: int
    churn_rate: float | None


class PlatformDayOut(ResponseModel):
    date: date
    active_users: int
    new_users: int
    buyers: int
    orders: int
    paid_orders: int
    revenue: Money
    avg_order_value: Money | None
    conversion_rate: float | None
    churned_users: int
    churn_rate: float | None


class RevenueDayOut(ResponseModel):
    date: date
    currency: str
    orders: int
    paid_orders: int
    revenue: Money
    avg_order_value: Money | None
    cumulative_revenue: Money


class TopShopOut(ResponseModel):
    shop_id: int
    name: str | None
    currency: str | None
    orders: int
    paid_orders: int
    revenue: Money
    views: int
    unique_visitors: int
    conversion_rate: float | None


class TopProductOut(ResponseModel):
    product_id: int
    name: str | None
    shop_id: int | None
    currency: str | None
    units_sold: int
    orders: int
    revenue: Money
    views: int


class PlatformPeriodOut(ResponseModel):
    start_date: date
    end_date: date
    kpis: PlatformKpisOut


class DashboardOut(ResponseModel):
    """Platform KPIs of the period and of the previous period of the same length (`change`: relative
    change in percent, null when the previous value is 0), the daily series, revenue per day and
    currency, and the period's top shops and products (by revenue, then orders)."""

    start_date: date
    end_date: date
    kpis: PlatformKpisOut
    previous: PlatformPeriodOut
    change: dict[str, float | None]
    series: list[PlatformDayOut]
    revenue: list[RevenueDayOut]
    top_shops: list[TopShopOut]
    top_products: list[TopProductOut]
    freshness: FreshnessOut
