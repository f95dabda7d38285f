"""Analytics: the shop daily metrics of seed 001 §2/§7 (mart_shop_daily) for the selection, the
view → chat → order → paid funnel, monthly cohort retention and search terms (the whole platform
only), and the drill-down platform → shop → product.

Without a shop filter the `shops` table has a row per shop in scope; with one (or a category or
product filter) the `products` table lists the selection's products; with a product filter the
`product_daily` table holds that product's days. `extra` carries the drill-down choices."""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.reports.builder import BuildContext, SectionSpec
from dashboard.reports.model import Chart, ChartKind, Column, Format, Metric, Report, Table, table
from dashboard.reports.sections import queries as q
from warehouse import marts
from warehouse.marts import MartReader

SLUG = "analytics"
TITLE = "Analytics"
TOP_TERMS = 20
PRODUCTS = 200


# --- shop days ------------------------------------------------------------------------------------


def _metrics(t: q.ShopDaySum, funnel: Funnel) -> list[Metric]:
    return [
        Metric("Views", t.views, Format.integer, help="Product page views of the shops' products."),
        Metric("Unique visitors", t.unique_visitors, Format.integer, help="Per shop and day, summed."),
        Metric("Orders", t.orders, Format.integer),
        Metric("Paid orders", t.paid_orders, Format.integer),
        Metric("Conversion rate", t.conversion_rate, Format.ratio, help="Orders / unique visitors."),
        Metric("Messages received", t.messages_received, Format.integer),
        Metric("New followers", t.new_followers, Format.integer),
        Metric(
            "Chat to order",
            marts.ratio(funnel.chatted_and_ordered, funnel.chatted),
            Format.ratio,
            help="Of the viewers who messaged a shop, the share who also ordered there that day.",
        ),
    ]


def _daily(days: list[q.ShopDaySum]) -> Table:
    return table(
        "daily",
        "Shop metrics by day",
        (
            Column("date", "Date", Format.date),
            Column("views", "Views", Format.integer),
            Column("unique_visitors", "Unique visitors", Format.integer),
            Column("product_views", "Products viewed", Format.integer),
            Column("messages_received", "Messages received", Format.integer),
            Column("orders", "Orders", Format.integer),
            Column("paid_orders", "Paid orders", Format.integer),
            Column("new_followers", "New followers", Format.integer),
            Column("conversion_rate", "Conversion", Format.ratio),
        ),
        [
            (
                d.day,
                d.views,
                d.unique_visitors,
                d.product_views,
                d.messages_received,
                d.orders,
                d.paid_orders,
                d.new_followers,
                d.conversion_rate,
            )
            for d in days
        ],
        note="mart_shop_daily summed over the shops; products viewed and visitors count per shop and day.",
    )


def _daily_revenue(reader: MartReader, sel: q.Selection) -> Table:
    """Revenue per day in each shop's reporting currency (mart_shop_daily: orders in another currency
    are counted in orders, not in revenue)."""
    cond, params = q.shop_condition(sel)
    rows = reader.fetch(
        f"""SELECT "date", currency, CAST(sum(orders - foreign_currency_orders) AS BIGINT),
                   CAST(sum(paid_orders) AS BIGINT), CAST(sum(revenue) AS {q.MONEY_SQL})
            FROM marts.mart_shop_daily
            WHERE "date" BETWEEN :start AND :end AND {cond}
            GROUP BY "date", currency""",  # noqa: S608
        {**params, **sel.params()},
    )
    have = {(r[0], str(r[1])): (int(r[2] or 0), int(r[3] or 0), marts.money(r[4])) for r in rows}
    currencies = sorted({c for _, c in have})
    out = []
    for day in sel.days:
        for c in currencies:
            orders, paid, revenue = have.get((day, c)) or (0, 0, marts.money(0))
            out.append((day, c, paid, revenue, marts.average(revenue, orders)))
    return table(
        "daily_revenue",
        "Shop revenue by day and currency",
        (
            Column("date", "Date", Format.date),
            Column("currency", "Currency", Format.text),
            Column("paid_orders", "Paid orders", Format.integer),
            Column("revenue", "Revenue", Format.money),
            Column("avg_order_value", "Average order value", Format.money),
        ),
        out,
        note="In each shop's reporting currency; the average is over the orders in that currency.",
    )


# --- the funnel -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Funnel:
    viewed: int
    chatted: int
    ordered: int
    chatted_and_ordered: int
    paid: int


def _funnel_numbers(reader: MartReader, sel: q.Selection) -> Funnel:
    cond, params = q.shop_condition(sel)
    cols = ("users_viewed", "users_chatted", "users_ordered", "users_chatted_and_ordered", "users_paid")
    sums = ", ".join(f"CAST(coalesce(sum({c}), 0) AS BIGINT)" for c in cols)
    ((*values,),) = reader.fetch(
        f"""SELECT {sums} FROM marts.mart_funnel
            WHERE "date" BETWEEN :start AND :end AND {cond}""",  # noqa: S608
        {**params, **sel.params()},
    )
    v = [int(x or 0) for x in values]
    return Funnel(v[0], v[1], v[2], v[3], v[4])


def _funnel(f: Funnel) -> Table:
    steps = (
        ("viewed", "Viewed a product", f.viewed, None),
        ("chatted", "Messaged the shop", f.chatted, marts.ratio(f.chatted, f.viewed)),
        ("ordered", "Ordered", f.ordered, marts.ratio(f.ordered, f.viewed)),
        ("paid", "Paid", f.paid, marts.ratio(f.paid, f.ordered)),
    )
    return table(
        "funnel",
        "Funnel: viewed → chatted → ordered → paid",
        (
            Column("step", "Step id", Format.text),
            Column("label", "Step", Format.text),
            Column("users", "Users", Format.integer),
            Column("step_rate", "Rate", Format.ratio),
            Column("share_of_viewers", "Share of viewers", Format.ratio),
        ),
        [(key, label, users, rate, marts.ratio(users, f.viewed)) for key, label, users, rate in steps],
        note=(
            "Signed-in users per shop and day, summed. Chatting is optional on the way to an order: "
            "ordered is a share of the viewers, paid of those who ordered."
        ),
    )


# --- platform-wide: cohorts and searches ----------------------------------------------------------


def _cohorts(reader: MartReader, sel: q.Selection) -> Table:
    rows = reader.fetch(
        """SELECT cohort_month, activity_month, months_since_signup, cohort_size, active_users
           FROM marts.mart_cohort_retention
           WHERE activity_month BETWEEN :month AND :end AND cohort_month <= :end
           ORDER BY cohort_month, activity_month""",
        {"month": sel.start.replace(day=1), "end": sel.end},
    )
    return table(
        "cohorts",
        "Monthly cohort retention",
        (
            Column("cohort", "Cohort", Format.text),
            Column("cohort_month", "Cohort month", Format.date),
            Column("activity_month", "Month", Format.date),
            Column("months_since_signup", "Months since sign-up", Format.integer),
            Column("cohort_size", "Cohort size", Format.integer),
            Column("active_users", "Active users", Format.integer),
            Column("retention_rate", "Retention", Format.ratio),
        ),
        [
            (f"{r[0]:%Y-%m}", r[0], r[1], int(r[2]), int(r[3]), int(r[4]), marts.ratio(int(r[4]), int(r[3])))
            for r in rows
        ],
        note="Calendar months overlapping the days: the users of each sign-up month active in each month.",
    )


def _search_terms(reader: MartReader, sel: q.Selection) -> Table:
    rows = reader.fetch(
        """SELECT search_term, CAST(sum(searches) AS BIGINT), CAST(sum(searchers) AS BIGINT),
                  CAST(sum(zero_result_searches) AS BIGINT), CAST(sum(clicked_searches) AS BIGINT)
           FROM marts.mart_search_terms
           WHERE "date" BETWEEN :start AND :end
           GROUP BY search_term
           ORDER BY sum(searches) DESC, search_term
           LIMIT :limit""",
        {**sel.params(), "limit": TOP_TERMS},
    )
    out = []
    for term, searches, searchers, zero, clicked in rows:
        n = int(searches or 0)
        out.append(
            (
                str(term),
                n,
                int(searchers or 0),
                int(zero or 0),
                marts.ratio(int(zero or 0), n),
                int(clicked or 0),
                marts.ratio(int(clicked or 0), n),
            )
        )
    return table(
        "search_terms",
        "Top search terms",
        (
            Column("search_term", "Term", Format.text),
            Column("searches", "Searches", Format.integer),
            Column("searchers", "Searchers (per day)", Format.integer),
            Column("zero_result_searches", "Zero-result searches", Format.integer),
            Column("zero_result_rate", "Zero-result rate", Format.ratio),
            Column("clicked_searches", "Clicked through", Format.integer),
            Column("click_through_rate", "Click-through rate", Format.ratio),
        ),
        out,
        note=(
            "Searchers count once per day, summed over the days. Click-through is over all searches: an "
            "anonymous search cannot be followed to a view, so it counts as not clicked."
        ),
    )


# --- the drill-down -------------------------------------------------------------------------------


def _shops(reader: MartReader, sel: q.Selection) -> Table:
    """One row per shop of the selection over the days (mart_shop_daily), by revenue."""
    cond, params = q.shop_condition(sel, "s.shop_id")
    rows = reader.fetch(
        f"""WITH days AS (
                SELECT shop_id, CAST(sum(views) AS BIGINT) AS views,
                       CAST(sum(unique_visitors) AS BIGINT) AS unique_visitors,
                       CAST(sum(orders) AS BIGINT) AS orders, CAST(sum(paid_orders) AS BIGINT) AS paid_orders,
                       CAST(sum(revenue) AS {q.MONEY_SQL}) AS revenue,
                       CAST(sum(new_followers) AS BIGINT) AS new_followers
                FROM marts.mart_shop_daily WHERE "date" BETWEEN :start AND :end
                GROUP BY shop_id
            )
            SELECT s.shop_id, s.shop_name, s.currency, coalesce(d.views, 0), coalesce(d.unique_visitors, 0),
                   coalesce(d.orders, 0), coalesce(d.paid_orders, 0), coalesce(d.revenue, 0),
                   coalesce(d.new_followers, 0)
            FROM marts.dim_shops s LEFT JOIN days d ON d.shop_id = s.shop_id
            WHERE {cond}
            ORDER BY coalesce(d.revenue, 0) DESC, coalesce(d.orders, 0) DESC, s.shop_id""",  # noqa: S608
        {**params, **sel.params()},
    )
    return table(
        "shops",
        "Shops",
        (
            Column("shop_id", "Shop id", Format.integer),
            Column("shop_name", "Shop", Format.text),
            Column("currency", "Currency", Format.text),
            Column("views", "Views", Format.integer),
            Column("unique_visitors", "Unique visitors", Format.integer),
            Column("orders", "Orders", Format.integer),
            Column("paid_orders", "Paid orders", Format.integer),
            Column("revenue", "Revenue", Format.money),
            Column("new_followers", "New followers", Format.integer),
            Column("conversion_rate", "Conversion", Format.ratio),
        ),
        [
            (
                int(r[0]),
                str(r[1]),
                str(r[2]),
                int(r[3]),
                int(r[4]),
                int(r[5]),
                int(r[6]),
                marts.money(r[7]),
                int(r[8]),
                marts.ratio(int(r[5]), int(r[4])),
            )
            for r in rows
        ],
        note="Revenue in the shop's reporting currency; pick a shop to see its products.",
    )


def _products(reader: MartReader, sel: q.Selection) -> Table:
    rows = q.product_numbers(reader, sel, limit=PRODUCTS)
    return table(
        "products",
        "Products",
        (
            Column("product_id", "Product id", Format.integer),
            Column("product_name", "Product", Format.text),
            Column("shop_id", "Shop id", Format.integer),
            Column("category_id", "Category id", Format.integer),
            Column("currency", "Currency", Format.text),
            Column("views", "Views", Format.integer),
            Column("unique_visitors", "Unique visitors", Format.integer),
            Column("orders", "Orders", Format.integer),
            Column("paid_orders", "Paid orders", Format.integer),
            Column("units_sold", "Units sold", Format.integer),
            Column("revenue", "Revenue", Format.money),
            Column("conversion_rate", "Conversion", Format.ratio),
        ),
        [
            (
                r.product_id,
                r.product_name,
                r.shop_id,
                r.category_id,
                r.currency,
                r.views,
                r.unique_visitors,
                r.orders,
                r.paid_orders,
                r.units_sold,
                r.revenue,
                r.conversion_rate,
            )
            for r in rows
        ],
        note=f"By revenue, at most {PRODUCTS}; unique visitors count once over the days.",
    )


def _product_daily(reader: MartReader, sel: q.Selection, product_id: int) -> Table:
    """The product's days: views, visitors, orders and units; revenue of the order lines in the
    product's price currency (a product is sold in the currency it is priced in)."""
    traffic = q.product_traffic_days(reader, sel)
    shop_sql, params = q.shop_condition(sel, "i.shop_id")
    rows = reader.fetch(
        f"""SELECT i.placed_date, CAST(count(DISTINCT i.order_id) AS BIGINT),
                   CAST(sum(CASE WHEN i.counts_as_revenue THEN i.quantity ELSE 0 END) AS BIGINT),
                   CAST(coalesce(sum(CASE WHEN i.currency = p.currency THEN i.revenue_amount END), 0)
                        AS {q.MONEY_SQL})
            FROM marts.fct_order_items i JOIN marts.dim_products p ON p.product_id = i.product_id
            WHERE i.placed_date BETWEEN :start AND :end AND i.product_id = :product_id AND {shop_sql}
            GROUP BY i.placed_date""",  # noqa: S608
        {**params, **sel.params(), "product_id": product_id},
    )
    sold = {r[0]: (int(r[1]), int(r[2] or 0), marts.money(r[3])) for r in rows}
    found = reader.fetch(
        "SELECT currency FROM marts.dim_products WHERE product_id = :product_id", {"product_id": product_id}
    )
    currency = str(found[0][0]) if found else None
    out = []
    for day in sel.days:
        t = traffic.get(day) or q.TrafficDay(day, 0, 0)
        orders, units, revenue = sold.get(day) or (0, 0, marts.money(0))
        out.append((day, t.views, t.unique_visitors, orders, units, currency, revenue))
    return table(
        "product_daily",
        "The product by day",
        (
            Column("date", "Date", Format.date),
            Column("views", "Views", Format.integer),
            Column("unique_visitors", "Unique visitors", Format.integer),
            Column("orders", "Orders", Format.integer),
            Column("units_sold", "Units sold", Format.integer),
            Column("currency", "Currency", Format.text),
            Column("revenue", "Revenue", Format.money),
        ),
        out,
    )


CHARTS = (
    Chart(
        "daily_traffic",
        "Views, visitors and orders per day",
        "daily",
        "date",
        ("views", "unique_visitors"),
        ChartKind.line,
        y2=("orders",),
    ),
    Chart("daily_conversion", "Conversion per day", "daily", "date", ("conversion_rate",), ChartKind.line),
    # Seed 001 §7 tracks messages received and new followers: the engagement that precedes orders.
    Chart(
        "daily_engagement",
        "Messages received and new followers per day",
        "daily",
        "date",
        ("messages_received", "new_followers"),
        ChartKind.bar,
    ),
    Chart(
        "daily_revenue",
        "Revenue per day",
        "daily_revenue",
        "date",
        ("revenue",),
        ChartKind.line,
        series="currency",
    ),
    Chart("funnel", "Funnel", "funnel", "label", ("users",), ChartKind.bar, y_title="Users"),
    Chart(
        "cohort_retention",
        "Retention by months since sign-up",
        "cohorts",
        "months_since_signup",
        ("retention_rate",),
        ChartKind.line,
        series="cohort",
        x_title="Months since sign-up",
    ),
    Chart("search_terms", "Top search terms", "search_terms", "search_term", ("searches",), ChartKind.bar),
    Chart("shops", "Orders by shop", "shops", "shop_name", ("orders", "paid_orders"), ChartKind.bar),
    Chart(
        "products",
        "Revenue by product",
        "products",
        "product_name",
        ("revenue",),
        ChartKind.bar,
        series="currency",
    ),
    Chart(
        "product_daily", "The product per day", "product_daily", "date", ("views", "orders"), ChartKind.line
    ),
)


def _extra(ctx: BuildContext, sel: q.Selection) -> dict[str, object]:
    """The drill-down choices: the shops in the reader's scope; the products of the picked shops or
    category (the whole platform's are too many to list); the categories of the picked shops'
    products."""
    picked = q.Selection(sel.start, sel.end, sel.shops, sel.category_id)
    listed = not sel.platform or sel.category_id is not None
    return {
        "shops": q.shop_names(ctx.reader, q.Selection(sel.start, sel.end, ctx.scope)),
        "products": q.product_names(ctx.reader, picked) if listed else [],
        "categories": q.category_names(ctx.reader, q.Selection(sel.start, sel.end, sel.shops)),
    }


def build(ctx: BuildContext) -> Report:
    filters = q.report_filters(ctx)
    q.check_product(ctx, filters)
    sel = q.selection(ctx, filters)
    previous = q.selection(ctx, filters.previous())
    days = q.shop_day_sums(ctx.reader, sel)
    funnel = _funnel_numbers(ctx.reader, sel)
    metrics = q.compared(
        _metrics(q.total(days), funnel),
        _metrics(q.total(q.shop_day_sums(ctx.reader, previous)), _funnel_numbers(ctx.reader, previous)),
    )
    tables = [_daily(days), _daily_revenue(ctx.reader, sel), _funnel(funnel)]
    notes = [
        "Shop metrics, the funnel and the shops table are per shop: a category or product filter narrows "
        "the product tables only."
    ]
    if ctx.scope is None and filters.shop_id is None:
        tables += [_cohorts(ctx.reader, sel), _search_terms(ctx.reader, sel)]
        notes.append(
            "Cohort retention and search terms are the whole platform's, whatever the other filters."
        )
    else:
        notes.append(
            "Cohort retention and search terms are shown for the whole platform only: sign-ups and "
            "searches belong to no shop."
        )
    if filters.shop_id is None:
        tables.append(_shops(ctx.reader, q.Selection(sel.start, sel.end, sel.shops)))
    if filters.shop_id is not None or sel.by_product:
        tables.append(_products(ctx.reader, sel))
    if filters.product_id is not None:
        tables.append(_product_daily(ctx.reader, sel, filters.product_id))
    return Report(
        section=SLUG,
        title=TITLE,
        subtitle=q.subtitle(ctx, filters),
        generated_at=ctx.now,
        freshness=ctx.freshness_text(),
        metrics=metrics,
        tables=tuple(tables),
        charts=q.charts_of(CHARTS, (t.name for t in tables)),
        notes=tuple(notes),
        extra=_extra(ctx, sel),
    )


SECTION = SectionSpec(slug=SLUG, title=TITLE, build=build)
