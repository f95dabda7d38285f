"""What the overview, analytics and blockchain reports select, as SQL, and the warehouse reads they share.

A `Selection` is a report's filters and the reader's scope together: a date range, the shops whose
numbers count (None: every shop, the whole platform) and an optional category or product. Its SQL
conditions take `:name` parameters, so each read is written once for DuckDB and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from dashboard.reports.builder import BuildContext
from dashboard.reports.filters import Filters, OutOfScope, scoped
from dashboard.reports.model import Chart, Metric
from warehouse.marts import CurrencyRevenue, MartReader, average, days_between, money, ratio

Params = dict[str, Any]
MONEY_SQL = "DECIMAL(38, 8)"


@dataclass(frozen=True)
class Selection:
    start: date
    end: date
    shops: tuple[int, ...] | None  # None: every shop
    category_id: int | None = None
    product_id: int | None = None

    @property
    def platform(self) -> bool:
        """Every shop's numbers: the platform marts apply (unless a product filter narrows them)."""
        return self.shops is None

    @property
    def by_product(self) -> bool:
        return self.category_id is not None or self.product_id is not None

    @property
    def days(self) -> list[date]:
        return days_between(self.start, self.end)

    def params(self) -> Params:
        return {"start": self.start, "end": self.end}

    def bounds(self) -> tuple[datetime, datetime]:
        return Filters(self.start, self.end).bounds()


def report_filters(ctx: BuildContext) -> Filters:
    """The context's filters as its reader may use them (a shop outside their scope: OutOfScope), also
    when a section is built directly rather than through build_report."""
    return scoped(ctx.filters, ctx.scope)


def selection(ctx: BuildContext, filters: Filters) -> Selection:
    shops: tuple[int, ...] | None = (filters.shop_id,) if filters.shop_id is not None else ctx.scope
    return Selection(filters.start, filters.end, shops, filters.category_id, filters.product_id)


def shop_condition(sel: Selection, column: str = "shop_id") -> tuple[str, Params]:
    if sel.shops is None:
        return "TRUE", {}
    if not sel.shops:
        return "FALSE", {}  # a shop owner without shops sees nothing
    params = {f"shop_{i}": shop for i, shop in enumerate(sel.shops)}
    return f"{column} IN ({', '.join(':' + name for name in params)})", params


def product_condition(sel: Selection, column: str = "product_id") -> tuple[str, Params]:
    parts, params = ["TRUE"], {}
    if sel.product_id is not None:
        parts.append(f"{column} = :product_id")
        params["product_id"] = sel.product_id
    if sel.category_id is not None:
        parts.append(
            f"{column} IN (SELECT product_id FROM marts.dim_products WHERE category_id = :category_id)"  # noqa: S608
        )
        params["category_id"] = sel.category_id
    return " AND ".join(parts), params


def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- names and words ------------------------------------------------------------------------------


def shop_names(reader: MartReader, sel: Selection) -> list[tuple[int, str]]:
    """(id, name) of the selection's shops, by id."""
    cond, params = shop_condition(sel)
    rows = reader.fetch(
        f"SELECT shop_id, shop_name FROM marts.dim_shops WHERE {cond} ORDER BY shop_id",  # noqa: S608
        params,
    )
    return [(int(r[0]), str(r[1])) for r in rows]


def product_names(reader: MartReader, sel: Selection) -> list[tuple[int, str]]:
    """(id, name) of the selection's products (its shops and category; not narrowed to one product)."""
    cond, params = shop_condition(sel)
    category = "TRUE"
    if sel.category_id is not None:
        category, params = "category_id = :category_id", {**params, "category_id": sel.category_id}
    rows = reader.fetch(
        f"""SELECT product_id, product_name FROM marts.dim_products
            WHERE {cond} AND {category} ORDER BY product_name, product_id""",  # noqa: S608
        params,
    )
    return [(int(r[0]), str(r[1])) for r in rows]


def category_names(reader: MartReader, sel: Selection) -> list[tuple[int, str]]:
    """(id, name) of the categories of the selection's products."""
    cond, params = shop_condition(sel)
    rows = reader.fetch(
        f"""SELECT DISTINCT category_id, category_name FROM marts.dim_products
            WHERE category_id IS NOT NULL AND {cond} ORDER BY category_id""",  # noqa: S608
        params,
    )
    return [(int(r[0]), str(r[1]) if r[1] is not None else category_label(int(r[0]))) for r in rows]


def category_name(reader: MartReader, category_id: int) -> str:
    rows = reader.fetch(
        "SELECT max(category_name) FROM marts.dim_products WHERE category_id = :category_id",
        {"category_id": category_id},
    )
    return str(rows[0][0]) if rows and rows[0][0] is not None else category_label(category_id)


def category_label(category_id: int) -> str:
    """A category the warehouse has no name for (not loaded yet) is named by its id."""
    return f"Category {category_id}"


def product_shop(reader: MartReader, product_id: int) -> tuple[int, str] | None:
    """(shop id, product name) of a product, None when the warehouse has no such product."""
    rows = reader.fetch(
        "SELECT shop_id, product_name FROM marts.dim_products WHERE product_id = :product_id",
        {"product_id": product_id},
    )
    return (int(rows[0][0]), str(rows[0][1])) if rows else None


def check_product(ctx: BuildContext, filters: Filters) -> None:
    """A shop owner may filter on their own products only."""
    if ctx.scope is None or filters.product_id is None:
        return
    found = product_shop(ctx.reader, filters.product_id)
    if found is not None and found[0] not in ctx.scope:
        raise OutOfScope(f"product {filters.product_id} is not one of yours")


def subtitle(ctx: BuildContext, filters: Filters) -> str:
    """The filters in words: the days, whose numbers (the platform or the shops by name), the category
    and product."""
    sel = selection(ctx, filters)
    parts = [f"{filters.start:%Y-%m-%d} to {filters.end:%Y-%m-%d} (UTC)"]
    if sel.platform:
        parts.append("the whole platform")
    else:
        names = [name for _, name in shop_names(ctx.reader, sel)]
        parts.append(", ".join(names) if names else "no shops")
    if filters.category_id is not None:
        parts.append(f"category {category_name(ctx.reader, filters.category_id)}")
    if filters.product_id is not None:
        found = product_shop(ctx.reader, filters.product_id)
        parts.append(f"product {found[1] if found else filters.product_id} (#{filters.product_id})")
    return " · ".join(parts)


# --- orders ---------------------------------------------------------------------------------------


def orders_cte(sel: Selection) -> tuple[str, Params]:
    """`WITH picked AS (...)`: the selection's orders placed in its days, one row per order with
    (order_id, shop_id, placed_date, currency, paid (1 when it counts as revenue), revenue).

    With a category or product, an order counts when it holds one of those products, and its revenue
    is that of those products' lines only."""
    shop_sql, params = shop_condition(sel)
    if not sel.by_product:
        body = f"""SELECT order_id, shop_id, placed_date, currency,
                          CASE WHEN counts_as_revenue THEN 1 ELSE 0 END AS paid,
                          revenue_amount AS revenue
                   FROM marts.fct_orders
                   WHERE placed_date BETWEEN :start AND :end AND {shop_sql}"""  # noqa: S608
    else:
        product_sql, more = product_condition(sel)
        params = {**params, **more}
        body = f"""SELECT order_id, max(shop_id) AS shop_id, max(placed_date) AS placed_date,
                          max(currency) AS currency,
                          max(CASE WHEN counts_as_revenue THEN 1 ELSE 0 END) AS paid,
                          sum(revenue_amount) AS revenue
                   FROM marts.fct_order_items
                   WHERE placed_date BETWEEN :start AND :end AND {shop_sql} AND {product_sql}
                   GROUP BY order_id"""  # noqa: S608
    return f"WITH picked AS ({body})", {**params, **sel.params()}


@dataclass(frozen=True)
class OrderDay:
    day: date
    currency: str
    orders: int
    paid_orders: int
    revenue: Decimal

    @property
    def avg_order_value(self) -> Decimal | None:
        return average(self.revenue, self.orders)


def order_days(reader: MartReader, sel: Selection) -> list[OrderDay]:
    """Orders, paid orders and revenue of the selection per day and order currency (days with orders)."""
    cte, params = orders_cte(sel)
    rows = reader.fetch(
        f"""{cte}
            SELECT placed_date, currency, CAST(count(*) AS BIGINT), CAST(sum(paid) AS BIGINT),
                   CAST(coalesce(sum(revenue), 0) AS {MONEY_SQL})
            FROM picked GROUP BY placed_date, currency ORDER BY placed_date, currency""",  # noqa: S608
        params,
    )
    return [OrderDay(r[0], str(r[1]), int(r[2]), int(r[3] or 0), money(r[4])) for r in rows]


def by_currency(days: Iterable[OrderDay]) -> dict[str, CurrencyRevenue]:
    sums: dict[str, CurrencyRevenue] = {}
    for d in days:
        t = sums.get(d.currency) or CurrencyRevenue(d.currency, 0, 0, money(0))
        sums[d.currency] = CurrencyRevenue(
            d.currency, t.orders + d.orders, t.paid_orders + d.paid_orders, money(t.revenue + d.revenue)
        )
    return dict(sorted(sums.items()))


def filled(days: Sequence[OrderDay], sel: Selection) -> list[OrderDay]:
    """Every day of the selection for every currency of `days` (zeros where none was ordered)."""
    have = {(d.day, d.currency): d for d in days}
    currencies = sorted({d.currency for d in days})
    return [have.get((day, c)) or OrderDay(day, c, 0, 0, money(0)) for day in sel.days for c in currencies]


@dataclass(frozen=True)
class ShopOrders:
    shop_id: int
    shop_name: str
    currency: str
    orders: int
    paid_orders: int
    revenue: Decimal


def orders_by_shop(reader: MartReader, sel: Selection, *, limit: int) -> list[ShopOrders]:
    """The selection's shops by revenue (then orders), one line per shop and order currency."""
    cte, params = orders_cte(sel)
    rows = reader.fetch(
        f"""{cte}, per_shop AS (
                SELECT shop_id, currency, CAST(count(*) AS BIGINT) AS orders,
                       CAST(sum(paid) AS BIGINT) AS paid_orders,
                       CAST(coalesce(sum(revenue), 0) AS {MONEY_SQL}) AS revenue
                FROM picked GROUP BY shop_id, currency
            )
            SELECT p.shop_id, s.shop_name, p.currency, p.orders, p.paid_orders, p.revenue
            FROM per_shop p JOIN marts.dim_shops s ON s.shop_id = p.shop_id
            ORDER BY p.revenue DESC, p.orders DESC, p.shop_id, p.currency
            LIMIT :limit""",  # noqa: S608
        {**params, "limit": limit},
    )
    return [ShopOrders(int(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4] or 0), money(r[5])) for r in rows]


# --- traffic --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrafficDay:
    """Page views of the selection in a day. `unique_visitors`: distinct visitors per shop and day,
    summed (as mart_shop_daily counts them), or per day for a product selection."""

    day: date
    views: int
    unique_visitors: int


def product_traffic_days(reader: MartReader, sel: Selection) -> dict[date, TrafficDay]:
    """Views of the selection's products per day (fct_product_views)."""
    shop_sql, params = shop_condition(sel)
    product_sql, more = product_condition(sel)
    rows = reader.fetch(
        f"""SELECT view_date, CAST(count(*) AS BIGINT), CAST(count(DISTINCT visitor_key) AS BIGINT)
            FROM marts.fct_product_views
            WHERE view_date BETWEEN :start AND :end AND {shop_sql} AND {product_sql}
            GROUP BY view_date""",  # noqa: S608
        {**params, **more, **sel.params()},
    )
    return {r[0]: TrafficDay(r[0], int(r[1]), int(r[2])) for r in rows}


@dataclass(frozen=True)
class ShopDaySum:
    """mart_shop_daily summed over the selection's shops for one day."""

    day: date
    views: int
    unique_visitors: int
    product_views: int
    messages_received: int
    orders: int
    paid_orders: int
    new_followers: int

    @property
    def conversion_rate(self) -> float | None:
        return ratio(self.orders, self.unique_visitors)


_SHOP_SUMS = ("views", "unique_visitors", "product_views", "messages_received", "orders", "paid_orders")


def shop_day_sums(reader: MartReader, sel: Selection) -> list[ShopDaySum]:
    """Every day of the selection: its shops' mart_shop_daily rows summed (zeros without rows)."""
    cond, params = shop_condition(sel)
    sums = ", ".join(f"CAST(sum({c}) AS BIGINT)" for c in (*_SHOP_SUMS, "new_followers"))
    rows = reader.fetch(
        f"""SELECT "date", {sums} FROM marts.mart_shop_daily
            WHERE "date" BETWEEN :start AND :end AND {cond} GROUP BY "date" """,  # noqa: S608
        {**params, **sel.params()},
    )
    have = {r[0]: ShopDaySum(r[0], *(int(v or 0) for v in r[1:])) for r in rows}
    return [have.get(d) or ShopDaySum(d, 0, 0, 0, 0, 0, 0, 0) for d in sel.days]


def total(days: Iterable[ShopDaySum]) -> ShopDaySum:
    items = list(days)
    first = items[0].day if items else date.min
    return ShopDaySum(
        first,
        *(sum(getattr(d, c) for d in items) for c in (*_SHOP_SUMS, "new_followers")),
    )


# --- products -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductNumbers:
    product_id: int
    product_name: str
    shop_id: int
    shop_name: str
    category_id: int | None
    currency: str
    views: int
    unique_visitors: int  # distinct over the days
    orders: int
    paid_orders: int
    units_sold: int
    revenue: Decimal

    @property
    def conversion_rate(self) -> float | None:
        return ratio(self.orders, self.unique_visitors)


def product_numbers(
    reader: MartReader, sel: Selection, *, limit: int, sold_only: bool = False
) -> list[ProductNumbers]:
    """The selection's products over its days, by revenue: views from fct_product_views, orders and
    revenue from fct_order_items (one line per product and order currency; the price currency for a
    product without orders). mart_product_performance covers a product's whole life, not a period."""
    shop_sql, params = shop_condition(sel, "p.shop_id")
    product_sql, more = product_condition(sel, "p.product_id")
    rows = reader.fetch(
        f"""WITH sold AS (
                SELECT product_id, currency,
                       CAST(count(DISTINCT order_id) AS BIGINT) AS orders,
                       CAST(count(DISTINCT CASE WHEN counts_as_revenue THEN order_id END) AS BIGINT)
                           AS paid_orders,
                       CAST(sum(CASE WHEN counts_as_revenue THEN quantity ELSE 0 END) AS BIGINT)
                           AS units_sold,
                       CAST(coalesce(sum(revenue_amount), 0) AS {MONEY_SQL}) AS revenue
                FROM marts.fct_order_items WHERE placed_date BETWEEN :start AND :end
                GROUP BY product_id, currency
            ), viewed AS (
                SELECT product_id, CAST(count(*) AS BIGINT) AS views,
                       CAST(count(DISTINCT visitor_key) AS BIGINT) AS visitors
                FROM marts.fct_product_views WHERE view_date BETWEEN :start AND :end
                GROUP BY product_id
            )
            SELECT p.product_id, p.product_name, p.shop_id, s.shop_name, p.category_id,
                   coalesce(o.currency, p.currency), coalesce(v.views, 0), coalesce(v.visitors, 0),
                   coalesce(o.orders, 0), coalesce(o.paid_orders, 0), coalesce(o.units_sold, 0),
                   coalesce(o.revenue, 0)
            FROM marts.dim_products p
            JOIN marts.dim_shops s ON s.shop_id = p.shop_id
            LEFT JOIN sold o ON o.product_id = p.product_id
            LEFT JOIN viewed v ON v.product_id = p.product_id
            WHERE {shop_sql} AND {product_sql} {"AND o.product_id IS NOT NULL" if sold_only else ""}
            ORDER BY coalesce(o.revenue, 0) DESC, coalesce(o.units_sold, 0) DESC,
                     coalesce(o.orders, 0) DESC, coalesce(v.views, 0) DESC, p.product_id
            LIMIT :limit""",  # noqa: S608
        {**params, **more, **sel.params(), "limit": limit},
    )
    return [
        ProductNumbers(
            product_id=int(r[0]),
            product_name=str(r[1]),
            shop_id=int(r[2]),
            shop_name=str(r[3]),
            category_id=None if r[4] is None else int(r[4]),
            currency=str(r[5]),
            views=int(r[6]),
            unique_visitors=int(r[7]),
            orders=int(r[8]),
            paid_orders=int(r[9]),
            units_sold=int(r[10]),
            revenue=money(r[11]),
        )
        for r in rows
    ]


# --- metrics --------------------------------------------------------------------------------------


def compared(current: Sequence[Metric], previous: Sequence[Metric]) -> tuple[Metric, ...]:
    """`current` with each metric's previous-period value (matched by label)."""
    before: Mapping[str, Metric] = {m.label: m for m in previous}
    out = []
    for m in current:
        prev = before.get(m.label)
        out.append(Metric(m.label, m.value, m.format, None if prev is None else prev.value, m.help))
    return tuple(out)


def charts_of(charts: Iterable[Chart], tables: Iterable[str]) -> tuple[Chart, ...]:
    """The charts whose table the report has."""
    names = set(tables)
    return tuple(c for c in charts if c.table in names)
