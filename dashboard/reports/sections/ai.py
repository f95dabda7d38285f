"""AI Insights: what the trained models say, read from the warehouse's `ml` schema (warehouse.ml_outputs)
with the marts for context: the demand forecast against the actual orders, buyer segments, each model's
last training against its baseline, the fraud queue, price and restock suggestions, and the insights.

A shop owner sees their shops' forecast, price and restock suggestions and insights only. Segments,
model quality and the fraud queue are the platform's: they are left out of a shop owner's report
(not shown empty), and the fraud queue in particular stays with staff, who review held orders; a seller
told which of their buyers look fraudulent could tip them off or turn them away on a score alone.

Until the train job has run there is no `ml` schema: every ml table is then empty and a note says so.
The tables present are listed first (information_schema), rather than a failed read caught: on
PostgreSQL a failed statement would abort the reader's one transaction for every read after it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from dashboard.reports.builder import BuildContext, SectionSpec
from dashboard.reports.model import Cell, Chart, ChartKind, Column, Format, Metric, Report, Table, table
from warehouse import marts, ml_outputs
from warehouse.duckdb import WarehouseUnavailable
from warehouse.marts import MartReader, money

UNTRAINED_NOTE = "Models have not been trained yet: run the train job"
MEASURE = "orders"
LIST_LIMIT = 20
FRAUD_LIMIT = 50
SCORE_BINS = 10
NEXT_DAYS = 7
T = TypeVar("T")


@dataclass(frozen=True)
class KeyMetric:
    """The figure a model's check compares with its baseline (pipelines/ml/checks.py)."""

    metric: str
    label: str
    baseline: str | None  # the metrics key of the baseline; None: a fixed value
    baseline_label: str
    fixed: float = 0.0


KEY_METRICS: dict[str, KeyMetric] = {
    "forecast": KeyMetric("smape", "sMAPE (lower is better)", "smape_naive", "seasonal naive"),
    "price": KeyMetric("auc", "AUC", "auc_baseline", "same model without price"),
    "segments": KeyMetric("silhouette", "silhouette", None, "0 (no structure)"),
    "recommender": KeyMetric(
        "precision_at_10_blended", "precision@10", "precision_at_10_popularity", "popularity"
    ),
    "fraud": KeyMetric("pr_auc", "PR-AUC", "base_rate", "base rate (random scores)"),
}


class _Ml:
    """Reads of the ml tables that come back empty, and remember it, when a table is not there."""

    def __init__(self, reader: MartReader) -> None:
        self.reader = reader
        rows = reader.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = :schema",
            {"schema": ml_outputs.ML},
        )
        self.present = {str(r[0]) for r in rows}
        self.missing: set[str] = set()

    def read(self, tables: Sequence[str], read: Callable[[], list[T]]) -> list[T]:
        absent = [t for t in tables if t not in self.present]
        if absent:
            self.missing.update(absent)
            return []
        try:
            return read()
        except WarehouseUnavailable:
            self.missing.update(tables)
            return []

    def fetch(self, tables: Sequence[str], sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return self.read(tables, lambda: self.reader.fetch(sql, params))


def _shops(ctx: BuildContext) -> tuple[int, ...] | None:
    """The shops the report is about: the shop filter, else a shop owner's shops, else all (None)."""
    if ctx.filters.shop_id is not None:
        return (ctx.filters.shop_id,)
    return ctx.scope


def _in(column: str, name: str, values: Sequence[int]) -> tuple[str, dict[str, Any]]:
    """`column IN (:name0, ...)`: one parameter per value, which both targets bind the same way."""
    if not values:
        return "1 = 0", {}
    params = {f"{name}{i}": v for i, v in enumerate(values)}
    return f"{column} IN ({', '.join(':' + k for k in params)})", params


def _product_where(
    ctx: BuildContext, shop: str, category: str | None, product: str | None
) -> tuple[str, dict[str, Any]]:
    clauses, params = ["1 = 1"], dict[str, Any]()
    shops = _shops(ctx)
    if shops is not None:
        clause, params = _in(shop, "shop", shops)
        clauses.append(clause)
    if category is not None and ctx.filters.category_id is not None:
        clauses.append(f"{category} = :category_id")
        params["category_id"] = ctx.filters.category_id
    if product is not None and ctx.filters.product_id is not None:
        clauses.append(f"{product} = :product_id")
        params["product_id"] = ctx.filters.product_id
    return " AND ".join(clauses), params


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


# --- the forecast ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """Whose demand the forecast table shows: one shop or category, several shops, or the platform."""

    level: str  # shop | category (the ml.demand_forecast level read)
    keys: tuple[int, ...] | None  # None: every key of the level
    label: str


def subject(ctx: BuildContext) -> Subject:
    shops = _shops(ctx)
    if shops is not None:
        if len(shops) == 1:
            return Subject("shop", shops, f"shop {shops[0]}")
        return Subject("shop", shops, "your shops")
    if ctx.filters.category_id is not None:
        category = ctx.filters.category_id
        return Subject("category", (category,), f"category {category}")
    # The platform as the sum of its shops' series: every order is in one shop, while an order with
    # lines in two categories counts in both categories' series.
    return Subject("shop", None, "the platform")


def _forecast_rows(ml: _Ml, subj: Subject) -> list[tuple[Any, ...]]:
    where, params = "level = :level AND measure = :measure", {"level": subj.level, "measure": MEASURE}
    if subj.keys is not None:
        clause, keys = _in('"key"', "key", subj.keys)
        where, params = f"{where} AND {clause}", {**params, **keys}
    return ml.fetch(
        ["demand_forecast"],
        f"""SELECT "day", sum(yhat), sum("lower"), sum("upper")
            FROM ml.demand_forecast WHERE {where} GROUP BY "day" ORDER BY "day" """,  # noqa: S608
        params,
    )


def _actual_rows(ctx: BuildContext, subj: Subject, through: date | None) -> dict[date, int]:
    """Orders placed and not cancelled per day (what the forecast models), zero-filled up to the last
    loaded day: a day after it is unknown, not zero."""
    end = ctx.filters.end if through is None else min(ctx.filters.end, through)
    if end < ctx.filters.start:
        return {}
    params: dict[str, Any] = {"start": ctx.filters.start, "end": end}
    if subj.level == "category":
        assert subj.keys is not None
        params["category_id"] = subj.keys[0]
        sql = """SELECT i.placed_date, count(DISTINCT i.order_id)
                 FROM marts.fct_order_items i
                 JOIN marts.fct_orders o ON o.order_id = i.order_id
                 JOIN marts.dim_products p ON p.product_id = i.product_id
                 WHERE o.status <> 'cancelled' AND p.category_id = :category_id
                   AND i.placed_date BETWEEN :start AND :end
                 GROUP BY i.placed_date"""
    else:
        where = "status <> 'cancelled' AND placed_date BETWEEN :start AND :end"
        if subj.keys is not None:
            clause, keys = _in("shop_id", "shop", subj.keys)
            where, params = f"{where} AND {clause}", {**params, **keys}
        sql = f"SELECT placed_date, count(*) FROM marts.fct_orders WHERE {where} GROUP BY placed_date"  # noqa: S608
    counts = {r[0]: int(r[1]) for r in ctx.reader.fetch(sql, params)}
    return {d: counts.get(d, 0) for d in marts.days_between(ctx.filters.start, end)}


def forecast_table(ctx: BuildContext, ml: _Ml, subj: Subject, through: date | None) -> Table:
    actual = _actual_rows(ctx, subj, through)
    predicted = {r[0]: (float(r[1]), float(r[2]), float(r[3])) for r in _forecast_rows(ml, subj)}
    rows: list[list[Cell]] = []
    for day in sorted(set(actual) | set(predicted)):
        yhat, lower, upper = predicted.get(day, (None, None, None))
        rows.append([day, actual.get(day), yhat, lower, upper])
    note = f"Daily orders (not cancelled) of {subj.label}: the actual history of the period and the "
    note += "model's forecast from the last loaded day on, with its interval"
    if subj.keys is None or len(subj.keys) > 1:
        note += "; the series are added up, bands included (wider than the total's own interval)"
    return table(
        "forecast",
        f"Demand forecast: {subj.label}",
        [
            Column("date", "Date", Format.date),
            Column("actual", "Actual orders", Format.integer),
            Column("yhat", "Forecast", Format.number),
            Column("lower", "Lower bound", Format.number),
            Column("upper", "Upper bound", Format.number),
        ],
        rows,
        note + ".",
    )


# --- segments, model quality, fraud ---------------------------------------------------------------


def segments_table(ml: _Ml) -> Table:
    rows = ml.fetch(
        ["user_segments"],
        """SELECT segment_name, count(*), avg(recency_days), avg(frequency),
                  CAST(avg(monetary) AS DECIMAL(38, 8))
           FROM ml.user_segments GROUP BY segment_name ORDER BY count(*) DESC, segment_name""",
        {},
    )
    total = sum(int(r[1]) for r in rows)
    return table(
        "segments",
        "Buyer segments",
        [
            Column("segment", "Segment"),
            Column("users", "Buyers", Format.integer),
            Column("share", "Share", Format.ratio),
            Column("recency_days", "Mean days since last order", Format.number),
            Column("frequency", "Mean orders", Format.number),
            Column("monetary", "Mean spend", Format.money),
        ],
        [[str(r[0]), int(r[1]), int(r[1]) / total, _float(r[2]), _float(r[3]), money(r[4])] for r in rows],
        "As of the last good segmentation run (not the selected period); spend adds up every currency's "
        "amounts.",
    )


def model_quality_table(ml: _Ml) -> Table:
    runs = ml.read(["model_runs"], lambda: ml_outputs.model_runs(ml.reader))
    latest: dict[str, ml_outputs.ModelRun] = {}
    for run in runs:  # newest first
        latest.setdefault(run.name, run)
    rows: list[list[Cell]] = []
    order = list(KEY_METRICS)
    for name in sorted(latest, key=lambda n: (order.index(n) if n in order else len(order), n)):
        run = latest[name]
        key = KEY_METRICS.get(name)
        value = baseline = None
        if key is not None:
            value = _number(run.metrics.get(key.metric))
            baseline = key.fixed if key.baseline is None else _number(run.metrics.get(key.baseline))
        rows.append(
            [
                name,
                run.version,
                run.trained_at,
                run.good,
                key.label if key else None,
                value,
                key.baseline_label if key else None,
                baseline,
            ]
        )
    return table(
        "model_quality",
        "Models: last training against the baseline",
        [
            Column("model", "Model"),
            Column("version", "Version"),
            Column("trained_at", "Trained (UTC)", Format.datetime),
            Column("good", "Beats baseline"),
            Column("metric", "Metric"),
            Column("value", "Value", Format.number),
            Column("baseline_name", "Baseline"),
            Column("baseline", "Baseline value", Format.number),
        ],
        rows,
        "A model that does not beat its baseline is kept but not served: the previous good one stays.",
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None


def _order_filters(ctx: BuildContext, start: date, end: date) -> tuple[str, dict[str, Any]]:
    clauses = ["o.placed_date BETWEEN :start AND :end"]
    params: dict[str, Any] = {"start": start, "end": end}
    if ctx.filters.shop_id is not None:
        clauses.append("o.shop_id = :shop_id")
        params["shop_id"] = ctx.filters.shop_id
    lines = []
    if ctx.filters.category_id is not None:
        lines.append("p.category_id = :category_id")
        params["category_id"] = ctx.filters.category_id
    if ctx.filters.product_id is not None:
        lines.append("i.product_id = :product_id")
        params["product_id"] = ctx.filters.product_id
    if lines:
        clauses.append(
            "EXISTS (SELECT 1 FROM marts.fct_order_items i JOIN marts.dim_products p"  # noqa: S608 (fixed clauses)
            " ON p.product_id = i.product_id WHERE i.order_id = o.order_id AND " + " AND ".join(lines) + ")"
        )
    return " AND ".join(clauses), params


def suspicious_count(ctx: BuildContext, ml: _Ml, start: date, end: date) -> int | None:
    where, params = _order_filters(ctx, start, end)
    rows = ml.fetch(
        ["fraud_scores"],
        f"""SELECT count(*) FROM ml.fraud_scores f JOIN marts.fct_orders o ON o.order_id = f.order_id
            WHERE f.suspicious AND {where}""",  # noqa: S608
        params,
    )
    return int(rows[0][0]) if rows else None


def fraud_queue_table(ctx: BuildContext, ml: _Ml) -> Table:
    where, params = _order_filters(ctx, ctx.filters.start, ctx.filters.end)
    rows = ml.fetch(
        ["fraud_scores"],
        f"""SELECT f.order_id, o.created_at, f.buyer_id, u.username, o.shop_id, o.total_amount, o.currency,
                   o.status, f.score
            FROM ml.fraud_scores f
            JOIN marts.fct_orders o ON o.order_id = f.order_id
            LEFT JOIN marts.dim_users u ON u.user_id = f.buyer_id
            WHERE f.suspicious AND {where}
            ORDER BY f.score DESC, f.order_id
            LIMIT :limit""",  # noqa: S608
        {**params, "limit": FRAUD_LIMIT},
    )
    return table(
        "fraud_queue",
        "Fraud queue: suspicious orders of the period",
        [
            Column("order_id", "Order", Format.integer),
            Column("placed_at", "Placed (UTC)", Format.datetime),
            Column("buyer_id", "Buyer id", Format.integer),
            Column("buyer", "Buyer"),
            Column("shop_id", "Shop", Format.integer),
            Column("amount", "Amount", Format.money),
            Column("currency", "Currency"),
            Column("status", "Status"),
            Column("score", "Fraud score", Format.number),
        ],
        [
            [int(r[0]), _utc(r[1]), int(r[2]), r[3], int(r[4]), money(r[5]), r[6], r[7], float(r[8])]
            for r in rows
        ],
        f"Orders the fraud model marks suspicious, highest score first (at most {FRAUD_LIMIT}).",
    )


def fraud_bins_table(ctx: BuildContext, ml: _Ml) -> Table:
    where, params = _order_filters(ctx, ctx.filters.start, ctx.filters.end)
    rows = ml.fetch(
        ["fraud_scores"],
        f"""SELECT LEAST(CAST(floor(f.score * {SCORE_BINS}) AS INTEGER), {SCORE_BINS - 1}) AS bin,
                   count(*), sum(CASE WHEN f.suspicious THEN 1 ELSE 0 END)
            FROM ml.fraud_scores f JOIN marts.fct_orders o ON o.order_id = f.order_id
            WHERE {where} GROUP BY 1 ORDER BY 1""",  # noqa: S608
        params,
    )
    counts = {int(r[0]): (int(r[1]), int(r[2] or 0)) for r in rows}
    width = 1 / SCORE_BINS
    return table(
        "fraud_scores",
        "Fraud scores of the period's orders",
        [
            Column("score_range", "Score"),
            Column("orders", "Orders", Format.integer),
            Column("suspicious", "Suspicious", Format.integer),
        ],
        [[f"{b * width:.1f}-{(b + 1) * width:.1f}", *counts.get(b, (0, 0))] for b in range(SCORE_BINS)]
        if counts
        else [],
    )


# --- suggestions and insights ---------------------------------------------------------------------


def price_table(ctx: BuildContext, ml: _Ml) -> tuple[Table, int]:
    where, params = _product_where(ctx, "s.shop_id", "s.category_id", "s.product_id")
    rows = ml.fetch(
        ["price_suggestions"],
        f"""SELECT s.product_id, p.product_name, s.shop_id, p.currency, s.current_price,
                   s.recommended_price, s.expected_revenue_change_pct, s.expected_revenue_change,
                   s.purchase_probability, s.recommended_purchase_probability, count(*) OVER ()
            FROM ml.price_suggestions s LEFT JOIN marts.dim_products p ON p.product_id = s.product_id
            WHERE s.expected_revenue_change_pct > 0 AND {where}
            ORDER BY s.expected_revenue_change_pct DESC, s.product_id
            LIMIT :limit""",  # noqa: S608
        {**params, "limit": LIST_LIMIT},
    )
    out = table(
        "price_suggestions",
        "Price suggestions",
        [
            Column("product_id", "Product", Format.integer),
            Column("product", "Name"),
            Column("shop_id", "Shop", Format.integer),
            Column("currency", "Currency"),
            Column("current_price", "Price", Format.money),
            Column("recommended_price", "Suggested price", Format.money),
            Column("revenue_change_pct", "Expected revenue change", Format.ratio),
            Column("revenue_change", "Revenue change per 100 views", Format.money),
            Column("purchase_probability", "Purchase probability", Format.ratio),
            Column("recommended_purchase_probability", "At the suggested price", Format.ratio),
        ],
        [
            [
                int(r[0]),
                r[1],
                None if r[2] is None else int(r[2]),
                r[3],
                money(r[4]),
                money(r[5]),
                float(r[6]),
                money(r[7]),
                float(r[8]),
                float(r[9]),
            ]
            for r in rows
        ],
        f"Products whose revenue per view the price model expects to rise most at another price within "
        f"+-30 % (relative change: amounts are in each product's currency); at most {LIST_LIMIT}.",
    )
    return out, int(rows[0][10]) if rows else 0


def restock_table(ctx: BuildContext, ml: _Ml) -> tuple[Table, int]:
    where, params = _product_where(ctx, "r.shop_id", "r.category_id", "r.product_id")
    rows = ml.fetch(
        ["restock_suggestions"],
        f"""SELECT r.product_id, p.product_name, r.shop_id, r.stock, r.daily_demand, r.days_of_cover,
                   r.sell_out_date, r.suggested_quantity, count(*) OVER ()
            FROM ml.restock_suggestions r LEFT JOIN marts.dim_products p ON p.product_id = r.product_id
            WHERE {where}
            ORDER BY r.sell_out_date, r.days_of_cover, r.product_id
            LIMIT :limit""",  # noqa: S608
        {**params, "limit": LIST_LIMIT},
    )
    out = table(
        "restock_suggestions",
        "Restock suggestions: soonest sell-out first",
        [
            Column("product_id", "Product", Format.integer),
            Column("product", "Name"),
            Column("shop_id", "Shop", Format.integer),
            Column("stock", "Stock", Format.integer),
            Column("daily_demand", "Daily demand", Format.number),
            Column("days_of_cover", "Days of cover", Format.number),
            Column("sell_out_date", "Sells out", Format.date),
            Column("suggested_quantity", "Suggested order", Format.integer),
        ],
        [[int(r[0]), r[1], int(r[2]), int(r[3]), float(r[4]), float(r[5]), r[6], int(r[7])] for r in rows],
        f"From the category demand forecast and each product's share of its recent sales; at most "
        f"{LIST_LIMIT}.",
    )
    return out, int(rows[0][8]) if rows else 0


def insights_table(ctx: BuildContext, ml: _Ml) -> Table:
    shops = _shops(ctx)
    items = ml.read(["insights"], lambda: ml_outputs.insights(ml.reader, shops))
    return table(
        "insights",
        "Insights",
        [
            Column("rank", "Rank", Format.integer),
            Column("kind", "Kind"),
            Column("title", "Insight"),
            Column("text", "Detail"),
            Column("shop_id", "Shop", Format.integer),
            Column("product_id", "Product", Format.integer),
            Column("score", "Score", Format.number),
        ],
        [[i.rank, i.kind, i.title, i.text, i.shop_id, i.product_id, i.score] for i in items],
    )


# --- the report -----------------------------------------------------------------------------------


def _next_days(forecast: Table, after: date | None) -> float | None:
    """The forecast orders of the first NEXT_DAYS forecast days after the last loaded day."""
    days = [
        (r[0], r[2])
        for r in forecast.rows
        if isinstance(r[0], date) and isinstance(r[2], float) and (after is None or r[0] > after)
    ]
    return sum(float(y) for _, y in sorted(days)[:NEXT_DAYS]) if days else None


def build(ctx: BuildContext) -> Report:
    ml = _Ml(ctx.reader)
    fresh = marts.freshness(ctx.reader, ctx.settings)
    platform = ctx.scope is None
    subj = subject(ctx)
    forecast = forecast_table(ctx, ml, subj, fresh.data_through)
    prices, price_count = price_table(ctx, ml)
    restock, restock_count = restock_table(ctx, ml)
    tables: list[Table] = [forecast]
    charts = [
        Chart(
            "forecast",
            f"Daily orders of {subj.label}: actual and forecast",
            "forecast",
            "date",
            ("yhat", "actual"),
            ChartKind.area,
            band=("lower", "upper"),
            y_title="Orders",
        )
    ]
    metrics = [
        Metric(
            f"Forecast orders, next {NEXT_DAYS} days",
            _next_days(forecast, fresh.data_through),
            Format.number,
            help=f"The forecast of {subj.label} for the {NEXT_DAYS} days after the last loaded day.",
        ),
        Metric(
            "Price suggestions", price_count, help="Products with a price expected to earn more per view."
        ),
        Metric(
            "Restock suggestions",
            restock_count,
            help="Products the demand forecast expects to sell out before a restock would arrive.",
        ),
    ]
    notes: list[str] = []
    if platform:
        segments = segments_table(ml)
        quality = model_quality_table(ml)
        queue, bins = fraud_queue_table(ctx, ml), fraud_bins_table(ctx, ml)
        suspicious = suspicious_count(ctx, ml, ctx.filters.start, ctx.filters.end)
        before = ctx.filters.previous()
        tables += [segments, quality, queue, bins]
        charts += [
            Chart("segments", "Buyers per segment", "segments", "segment", ("users",), ChartKind.bar),
            Chart(
                "model_quality",
                "Each model's key metric against its baseline",
                "model_quality",
                "model",
                ("value", "baseline"),
                ChartKind.bar,
            ),
            Chart(
                "fraud_scores",
                "Orders by fraud score",
                "fraud_scores",
                "score_range",
                ("orders", "suspicious"),
                ChartKind.bar,
                x_title="Fraud score",
                y_title="Orders",
            ),
        ]
        scored = [r for r in quality.records() if r["model"] in KEY_METRICS]
        good = sum(1 for r in scored if r["good"] is True)
        metrics += [
            Metric(
                "Suspicious orders",
                suspicious,
                previous=suspicious_count(ctx, ml, before.start, before.end),
                help="Orders of the period the fraud model marks suspicious.",
            ),
            Metric("Buyers segmented", sum(v for v in segments.values("users") if isinstance(v, int))),
            Metric(
                "Models beating their baseline",
                good,
                help=f"Of the {len(scored)} models with a baseline, at their last training.",
            ),
        ]
    else:
        notes.append(
            "Buyer segments, model quality and the fraud queue cover the whole platform: they are for "
            "analysts and admins. Suspicious orders are reviewed by staff and not shown to shop owners."
        )
    tables += [prices, restock, insights_table(ctx, ml)]
    if ml.missing:
        untrained = not ml.present & set(ml_outputs.TABLES)
        notes.insert(0, f"{UNTRAINED_NOTE}." if untrained else _partial(ml.missing))
    if ctx.filters.product_id is not None:
        notes.append("The forecast is per shop or category: the product filter applies to the suggestions.")
    subtitle = ctx.filters.describe()
    if ctx.scope is not None and ctx.filters.shop_id is None:
        subtitle += ", your shops " + ", ".join(str(s) for s in ctx.scope)
    return Report(
        section=SECTION.slug,
        title=SECTION.title,
        subtitle=subtitle,
        generated_at=ctx.now,
        freshness=ctx.freshness_text(),
        metrics=tuple(metrics),
        tables=tuple(tables),
        charts=tuple(charts),
        notes=tuple(notes),
    )


def _partial(missing: set[str]) -> str:
    return f"{UNTRAINED_NOTE} (missing: {', '.join(sorted(missing))})."


SECTION = SectionSpec(slug="ai", title="AI Insights", build=build, platform_only=False)
