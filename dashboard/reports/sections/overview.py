"""Overview: the headline numbers of a date range against the range just before it, the days, and the
top shops and products.

The whole platform reads the platform marts (mart_platform_daily, mart_revenue_daily); shops read
mart_shop_daily for their traffic and their orders from fct_orders (every currency they were paid
in); a category or product filter narrows orders to those holding its products (and revenue to
those products' lines) and traffic to their page views."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from dashboard.reports.builder import BuildContext, SectionSpec
from dashboard.reports.filters import Filters
from dashboard.reports.model import Cell, Chart, ChartKind, Column, Format, Metric, Report, Table, table
from dashboard.reports.sections import queries as q
from warehouse import marts

TOP = 10
SLUG = "overview"
TITLE = "Overview"

PLATFORM_CONVERSION = "Buyers / active users, over the days (a user counts once per day)."
SHOP_CONVERSION = "Orders / unique visitors, over the days (a visitor counts once per shop and day)."


@dataclass(frozen=True)
class Period:
    """One period's numbers for the selection."""

    days: list[q.OrderDay]  # per day and order currency, days with orders only
    audience: list[Metric]  # the KPIs beside orders and revenue
    daily_columns: tuple[Column, ...]  # beside date, orders, paid_orders
    daily_extra: dict[date, tuple[Cell, ...]]


def _order_days(ctx: BuildContext, sel: q.Selection) -> list[q.OrderDay]:
    if sel.platform and not sel.by_product:
        return [
            q.OrderDay(r.day, r.currency, r.orders, r.paid_orders, r.revenue)
            for r in marts.revenue_days(ctx.reader, sel.start, sel.end)
            if r.orders or r.revenue  # the mart has a row for every currency every day
        ]
    return q.order_days(ctx.reader, sel)


def _platform(ctx: BuildContext, sel: q.Selection) -> tuple[list[Metric], dict[date, tuple[Cell, ...]]]:
    days = marts.platform_days(ctx.reader, sel.start, sel.end)
    totals = marts.platform_totals(days)
    metrics = [
        Metric("Conversion rate", totals.conversion_rate, Format.ratio, help=PLATFORM_CONVERSION),
        Metric(
            "Active users (daily average)",
            totals.avg_daily_active_users,
            Format.number,
            help="Users with at least one of their own events, per day, averaged over the days.",
        ),
        Metric("New users", totals.new_users, Format.integer, help="Sign-ups in the days."),
    ]
    extra: dict[date, tuple[Cell, ...]] = {
        d.day: (d.active_users, d.new_users, d.buyers, marts.ratio(d.buyers, d.active_users)) for d in days
    }
    return metrics, extra


_PLATFORM_COLUMNS = (
    Column("active_users", "Active users", Format.integer),
    Column("new_users", "New users", Format.integer),
    Column("buyers", "Buyers", Format.integer),
    Column("conversion_rate", "Conversion", Format.ratio),
)
_SHOP_COLUMNS = (
    Column("views", "Views", Format.integer),
    Column("unique_visitors", "Unique visitors", Format.integer),
    Column("new_followers", "New followers", Format.integer),
    Column("conversion_rate", "Conversion", Format.ratio),
)
_PRODUCT_COLUMNS = (
    Column("views", "Views", Format.integer),
    Column("unique_visitors", "Unique visitors", Format.integer),
    Column("conversion_rate", "Conversion", Format.ratio),
)


def _period(ctx: BuildContext, sel: q.Selection) -> Period:
    days = _order_days(ctx, sel)
    orders_on: dict[date, int] = {}
    for d in days:
        orders_on[d.day] = orders_on.get(d.day, 0) + d.orders
    orders = sum(orders_on.values())
    if sel.platform and not sel.by_product:
        metrics, extra = _platform(ctx, sel)
        return Period(days, metrics, _PLATFORM_COLUMNS, extra)
    if not sel.by_product:
        shop_days = q.shop_day_sums(ctx.reader, sel)
        t = q.total(shop_days)
        metrics = [
            Metric("Views", t.views, Format.integer, help="Product page views."),
            Metric("Unique visitors", t.unique_visitors, Format.integer, help="Per shop and day, summed."),
            Metric("New followers", t.new_followers, Format.integer),
            Metric(
                "Conversion rate", marts.ratio(orders, t.unique_visitors), Format.ratio, help=SHOP_CONVERSION
            ),
        ]
        extra = {
            s.day: (
                s.views,
                s.unique_visitors,
                s.new_followers,
                marts.ratio(orders_on.get(s.day, 0), s.unique_visitors),
            )
            for s in shop_days
        }
        return Period(days, metrics, _SHOP_COLUMNS, extra)
    traffic = q.product_traffic_days(ctx.reader, sel)
    views = sum(t.views for t in traffic.values())
    visitors = sum(t.unique_visitors for t in traffic.values())
    metrics = [
        Metric("Views", views, Format.integer, help="Page views of the selected products."),
        Metric("Unique visitors", visitors, Format.integer, help="Per day, summed."),
        Metric(
            "Conversion rate",
            marts.ratio(orders, visitors),
            Format.ratio,
            help="Orders with the selected products / their unique visitors (per day, summed).",
        ),
    ]
    extra = {}
    for day in sel.days:
        seen = traffic.get(day) or q.TrafficDay(day, 0, 0)
        extra[day] = (
            seen.views,
            seen.unique_visitors,
            marts.ratio(orders_on.get(day, 0), seen.unique_visitors),
        )
    return Period(days, metrics, _PRODUCT_COLUMNS, extra)


def _headline(period: Period, currencies: Sequence[str]) -> list[Metric]:
    totals = q.by_currency(period.days)
    metrics = [
        Metric(
            "Orders",
            sum(t.orders for t in totals.values()),
            Format.integer,
            help="Placed, whatever became of them.",
        ),
        Metric(
            "Paid orders",
            sum(t.paid_orders for t in totals.values()),
            Format.integer,
            help="Paid and not cancelled since.",
        ),
    ]
    if not currencies:
        metrics.append(Metric("Revenue", marts.money(0), Format.money))
    for c in currencies:
        metrics.append(
            Metric(f"Revenue ({c})", totals[c].revenue if c in totals else marts.money(0), Format.money)
        )
    for c in currencies:
        aov = totals[c].avg_order_value if c in totals else None
        metrics.append(
            Metric(f"Average order value ({c})", aov, Format.money, help=f"Revenue / orders in {c}.")
        )
    return metrics + period.audience


def _daily_tables(period: Period, sel: q.Selection) -> tuple[Table, Table]:
    per_day: dict[date, list[int]] = {}
    for d in period.days:
        acc = per_day.setdefault(d.day, [0, 0])
        acc[0] += d.orders
        acc[1] += d.paid_orders
    width = len(period.daily_columns)
    daily = table(
        "daily",
        "Day by day",
        (
            Column("date", "Date", Format.date),
            Column("orders", "Orders", Format.integer),
            Column("paid_orders", "Paid orders", Format.integer),
            *period.daily_columns,
        ),
        [
            (day, *per_day.get(day, [0, 0]), *(period.daily_extra.get(day) or (0,) * (width - 1) + (None,)))
            for day in sel.days
        ],
    )
    revenue = table(
        "daily_revenue",
        "Revenue by day and currency",
        (
            Column("date", "Date", Format.date),
            Column("currency", "Currency", Format.text),
            Column("orders", "Orders", Format.integer),
            Column("paid_orders", "Paid orders", Format.integer),
            Column("revenue", "Revenue", Format.money),
            Column("avg_order_value", "Average order value", Format.money),
        ),
        [
            (d.day, d.currency, d.orders, d.paid_orders, d.revenue, d.avg_order_value)
            for d in q.filled(period.days, sel)
        ],
        note="One row per day for each currency ordered in during the days.",
    )
    return daily, revenue


def _top_shops(ctx: BuildContext, sel: q.Selection) -> Table:
    rows = q.orders_by_shop(ctx.reader, sel, limit=TOP)
    return table(
        "top_shops",
        "Top shops by revenue",
        (
            Column("shop_id", "Shop id", Format.integer),
            Column("shop_name", "Shop", Format.text),
            Column("currency", "Currency", Format.text),
            Column("orders", "Orders", Format.integer),
            Column("paid_orders", "Paid orders", Format.integer),
            Column("revenue", "Revenue", Format.money),
            Column("avg_order_value", "Average order value", Format.money),
        ),
        [
            (
                r.shop_id,
                r.shop_name,
                r.currency,
                r.orders,
                r.paid_orders,
                r.revenue,
                marts.average(r.revenue, r.orders),
            )
            for r in rows
        ],
        note="One line per shop and order currency.",
    )


def _top_products(ctx: BuildContext, sel: q.Selection) -> Table:
    rows = q.product_numbers(ctx.reader, sel, limit=TOP, sold_only=True)
    return table(
        "top_products",
        "Top products by revenue",
        (
            Column("product_id", "Product id", Format.integer),
            Column("product_name", "Product", Format.text),
            Column("shop_id", "Shop id", Format.integer),
            Column("shop_name", "Shop", Format.text),
            Column("currency", "Currency", Format.text),
            Column("views", "Views", Format.integer),
            Column("orders", "Orders", Format.integer),
            Column("units_sold", "Units sold", Format.integer),
            Column("revenue", "Revenue", Format.money),
        ),
        [
            (
                r.product_id,
                r.product_name,
                r.shop_id,
                r.shop_name,
                r.currency,
                r.views,
                r.orders,
                r.units_sold,
                r.revenue,
            )
            for r in rows
        ],
        note="Products ordered in the days; revenue from the order lines that count as revenue.",
    )


CHARTS = (
    Chart(
        "daily_orders",
        "Orders per day",
        "daily",
        "date",
        ("orders", "paid_orders"),
        ChartKind.bar,
        y_title="Orders",
    ),
    Chart(
        "daily_revenue",
        "Revenue per day",
        "daily_revenue",
        "date",
        ("revenue",),
        ChartKind.line,
        series="currency",
        y_title="Revenue",
    ),
    Chart(
        "top_shops",
        "Top shops by revenue",
        "top_shops",
        "shop_name",
        ("revenue",),
        ChartKind.bar,
        series="currency",
    ),
    Chart(
        "top_products",
        "Top products by revenue",
        "top_products",
        "product_name",
        ("revenue",),
        ChartKind.bar,
        series="currency",
    ),
)


def _notes(sel: q.Selection) -> tuple[str, ...]:
    notes = [
        "Days are UTC days; an order counts on the day it was placed, its revenue if paid and not cancelled."
    ]
    if sel.by_product:
        notes.append(
            "A category or product filter counts the orders holding its products and the revenue of those "
            "products' lines only."
        )
    if sel.platform and not sel.by_product:
        notes.append("Conversion is buyers over active users, each counted once per day.")
    else:
        notes.append(
            "Unique visitors count once per shop and day (per day for products), summed over the days."
        )
    return tuple(notes)


def build(ctx: BuildContext) -> Report:
    filters: Filters = q.report_filters(ctx)
    q.check_product(ctx, filters)
    sel = q.selection(ctx, filters)
    now, before = _period(ctx, sel), _period(ctx, q.selection(ctx, filters.previous()))
    currencies = sorted({d.currency for d in now.days} | {d.currency for d in before.days})
    metrics = q.compared(_headline(now, currencies), _headline(before, currencies))
    daily, daily_revenue = _daily_tables(now, sel)
    tables = [daily, daily_revenue]
    if sel.platform:
        tables.append(_top_shops(ctx, sel))
    tables.append(_top_products(ctx, sel))
    return Report(
        section=SLUG,
        title=TITLE,
        subtitle=q.subtitle(ctx, filters),
        generated_at=ctx.now,
        freshness=ctx.freshness_text(),
        metrics=metrics,
        tables=tuple(tables),
        charts=q.charts_of(CHARTS, (t.name for t in tables)),
        notes=_notes(sel),
    )


SECTION = SectionSpec(slug=SLUG, title=TITLE, build=build)
