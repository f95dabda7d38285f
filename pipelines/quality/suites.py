"""The suites: what the raw layer (the store's copy) and the marts (what the API and dashboard show)
must satisfy.

Raw suites block the dbt build: a duplicate key, a negative price or an orphan would flow into every
mart. Mart suites block the publish step: readers keep the last good snapshot instead of seeing a
wrong figure."""

from __future__ import annotations

from api.auth.models import Role
from api.orders.models import OrderStatus
from api.outbox.types import EventType
from pipelines.quality.rules import Between, Equal, InSet, NotNull, References, Suite, Unique

RAW_ID = (NotNull("id"), Unique(("id",)))

RAW_SUITES: tuple[Suite, ...] = (
    Suite(
        name="raw_events_latest_batch_valid",
        asset="raw_events",
        table="raw.events",
        # The latest load only: the whole history was checked when it arrived, and is large.
        where="t._loaded_at = (SELECT max(_loaded_at) FROM raw.events)",
        rules=(
            NotNull("event_id"),
            Unique(("event_id",)),
            NotNull("event_type"),
            NotNull("occurred_at"),
            InSet("event_type", tuple(e.value for e in EventType)),
        ),
        description="The events of the latest load have an event_id (unique), a known type and a time.",
    ),
    Suite(
        name="raw_users_valid",
        asset="raw_users",
        table="raw.users",
        rules=(*RAW_ID, NotNull("email"), Unique(("email",)), InSet("role", tuple(r.value for r in Role))),
    ),
    Suite(
        name="raw_shops_valid",
        asset="raw_shops",
        table="raw.shops",
        rules=(*RAW_ID, NotNull("owner_id"), References("owner_id", "raw.users")),
        reads=("raw_users",),
    ),
    Suite(
        name="raw_products_valid",
        asset="raw_products",
        table="raw.products",
        rules=(
            *RAW_ID,
            NotNull("shop_id"),
            NotNull("price"),
            Between("price", 0),
            Between("stock", 0),
            References("shop_id", "raw.shops"),
        ),
        reads=("raw_shops",),
    ),
    Suite(
        name="raw_orders_valid",
        asset="raw_orders",
        table="raw.orders",
        rules=(
            *RAW_ID,
            NotNull("total_amount"),
            Between("total_amount", 0),
            InSet("status", tuple(s.value for s in OrderStatus)),
            References("buyer_id", "raw.users"),
            References("shop_id", "raw.shops"),
        ),
        reads=("raw_users", "raw_shops"),
    ),
    Suite(
        name="raw_order_items_valid",
        asset="raw_order_items",
        table="raw.order_items",
        rules=(
            *RAW_ID,
            NotNull("order_id"),
            NotNull("product_id"),
            Between("quantity", 1),
            Between("unit_price", 0),
            Between("line_total", 0),
            References("order_id", "raw.orders"),
            References("product_id", "raw.products"),
        ),
        reads=("raw_orders", "raw_products"),
    ),
    Suite(
        name="raw_reviews_valid",
        asset="raw_reviews",
        table="raw.reviews",
        rules=(
            *RAW_ID,
            Between("rating", 1, 5),
            References("product_id", "raw.products"),
            References("user_id", "raw.users"),
        ),
        reads=("raw_products", "raw_users"),
    ),
    Suite(
        name="raw_messages_valid",
        asset="raw_messages",
        table="raw.messages",
        rules=(
            *RAW_ID,
            References("conversation_id", "raw.conversations"),
            References("sender_id", "raw.users"),
        ),
        reads=("raw_conversations", "raw_users"),
    ),
    Suite(
        name="raw_shop_followers_valid",
        asset="raw_shop_followers",
        table="raw.shop_followers",
        rules=(*RAW_ID, References("user_id", "raw.users"), References("shop_id", "raw.shops")),
        reads=("raw_users", "raw_shops"),
    ),
)

# Revenue of each shop-day in the mart against the orders it comes from (fct_orders keeps every order
# with its revenue_amount: total_amount when it counts as revenue, else 0), both ways round: a
# shop-day missing on either side shows as a difference.
_SHOP_REVENUE_RECONCILED = """
WITH mart AS (
    SELECT shop_id, date AS day, revenue FROM marts.mart_shop_daily
), orders AS (
    SELECT shop_id, placed_date AS day, sum(revenue_amount) AS revenue
    FROM marts.fct_orders GROUP BY shop_id, placed_date
)
SELECT coalesce(mart.shop_id, orders.shop_id) AS shop_id,
       coalesce(mart.day, orders.day) AS day,
       coalesce(mart.revenue, 0) AS mart_revenue,
       coalesce(orders.revenue, 0) AS orders_revenue
FROM mart FULL OUTER JOIN orders ON mart.shop_id = orders.shop_id AND mart.day = orders.day
"""

_DAILY_REVENUE_RECONCILED = """
WITH mart AS (
    SELECT date AS day, currency, revenue FROM marts.mart_revenue_daily
), orders AS (
    SELECT placed_date AS day, currency, sum(revenue_amount) AS revenue
    FROM marts.fct_orders GROUP BY placed_date, currency
)
SELECT coalesce(mart.day, orders.day) AS day,
       coalesce(mart.currency, orders.currency) AS currency,
       coalesce(mart.revenue, 0) AS mart_revenue,
       coalesce(orders.revenue, 0) AS orders_revenue
FROM mart FULL OUTER JOIN orders ON mart.day = orders.day AND mart.currency = orders.currency
"""

MART_SUITES: tuple[Suite, ...] = (
    Suite(
        name="fct_orders_valid",
        asset="marts/fct_orders",
        table="marts.fct_orders",
        rules=(
            NotNull("order_id"),
            Unique(("order_id",)),
            NotNull("placed_date"),
            Between("total_amount", 0),
            Between("revenue_amount", 0),
            References("shop_id", "marts.dim_shops", "shop_id"),
            References("buyer_id", "marts.dim_users", "user_id"),
        ),
        reads=("marts/dim_shops", "marts/dim_users"),
    ),
    Suite(
        name="mart_shop_daily_valid",
        asset="marts/mart_shop_daily",
        table="marts.mart_shop_daily",
        rules=(
            NotNull("shop_id"),
            NotNull("date"),
            Unique(("shop_id", "date")),
            *(
                Between(c, 0)
                for c in ("views", "unique_visitors", "product_views", "orders", "paid_orders", "revenue")
            ),
            Between("avg_order_value", 0),
            Between("conversion_rate", 0),
            References("shop_id", "marts.dim_shops", "shop_id"),
        ),
        reads=("marts/dim_shops",),
    ),
    Suite(
        name="mart_shop_daily_revenue_reconciles",
        asset="marts/mart_shop_daily",
        sql=_SHOP_REVENUE_RECONCILED,
        rules=(Unique(("shop_id", "day")), Equal("mart_revenue", "orders_revenue")),
        reads=("marts/fct_orders",),
        description="Revenue of every shop-day equals the sum of revenue_amount of the orders placed "
        "that day in fct_orders (exact decimals), with no shop-day missing on either side.",
    ),
    Suite(
        name="mart_shop_daily_conversion_at_most_one",
        asset="marts/mart_shop_daily",
        table="marts.mart_shop_daily",
        rules=(Between("conversion_rate", 0, 1),),
        # Orders over unique visitors can pass 1 (a visitor ordering twice, an order placed from a
        # link without a view): worth a look, not a reason to withhold the marts.
        blocking=False,
        description="Shop conversion (orders / unique visitors) is at most 1 (a warning when not).",
    ),
    Suite(
        name="mart_platform_daily_valid",
        asset="marts/mart_platform_daily",
        table="marts.mart_platform_daily",
        rules=(
            NotNull("date"),
            Unique(("date",)),
            Between("active_users", 0),
            Between("buyers", 0),
            Between("revenue", 0),
            Between("avg_order_value", 0),
            Between("conversion_rate", 0, 1),
            Between("churn_rate", 0, 1),
        ),
    ),
    Suite(
        name="mart_revenue_daily_valid",
        asset="marts/mart_revenue_daily",
        table="marts.mart_revenue_daily",
        rules=(
            NotNull("date"),
            NotNull("currency"),
            Unique(("date", "currency")),
            Between("revenue", 0),
            Between("cumulative_revenue", 0),
            Between("avg_order_value", 0),
        ),
    ),
    Suite(
        name="mart_revenue_daily_reconciles",
        asset="marts/mart_revenue_daily",
        sql=_DAILY_REVENUE_RECONCILED,
        rules=(Unique(("day", "currency")), Equal("mart_revenue", "orders_revenue")),
        reads=("marts/fct_orders",),
        description="Revenue of every day and currency equals the orders' in fct_orders.",
    ),
)
