"""The ML assets: each trains one model with `ml/` on frames read from the warehouse, checks it against
its baseline, saves it to the registry (with its training window, features, metrics and data version:
the events high-water mark), and, when it is good, replaces its outputs in the warehouse's `ml` schema.

A model that does not beat its baseline is saved as not good and its check fails: the API keeps
serving the previous model and the ml tables keep that model's outputs. Every run is recorded in
ml.model_runs either way. Connections to the warehouse are held only to read inputs and to write
outputs, never across a training: DuckDB admits one writer at a time.
"""
# No `from __future__ import annotations` here: Dagster reads the parameter annotations (context,
# resources) at decoration time and needs them as real types.

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from dagster import AssetCheckResult, AssetExecutionContext, AssetKey, MaterializeResult, asset

from api.recommendations.service import replace_recommendations
from ml import forecast as fc
from ml import fraud, insights, price, recommend, registry, segments
from pipelines.ingest.resources import WarehouseResource
from pipelines.ml import checks
from pipelines.ml.resources import MlResource, RecommendationsStore, ml_writer
from simulator import truth as planted
from warehouse import ml_frames
from warehouse.marts import MartReader, money
from warehouse.ml_outputs import MlWriter, to_json

GROUP = "ml"
FORECAST, PRICE, SEGMENTS, RECOMMENDER, FRAUD, INSIGHTS = (
    "forecast",
    "price",
    "segments",
    "recommender",
    "fraud",
    "insights",
)
# The registry names a trained platform has (insights are computed, not a saved model).
MODEL_NAMES = (FORECAST, PRICE, SEGMENTS, RECOMMENDER, FRAUD)


def _dbt(model: str) -> AssetKey:
    return AssetKey(["marts", model])


def _raw(table: str) -> AssetKey:
    return AssetKey(f"raw_{table}")


ORDER_LINE_DEPS = [_dbt("fct_orders"), _dbt("fct_order_items"), _dbt("dim_products")]
PRODUCT_DEPS = [_raw("products"), _raw("shops")]
VIEW_DEPS = [_dbt("fct_product_views"), _raw("events"), *PRODUCT_DEPS]


# --- shared steps --------------------------------------------------------------------------------


def _data_end(reader: MartReader) -> pd.Timestamp:
    """The moment after the newest event loaded: what "now" is for the data (a simulated history may
    lie in the past)."""
    # Events the pipelines write themselves (recommendations refreshed, admins notified of a run) carry
    # the wall clock, not the history's: they are not activity, and would move "now" past the data.
    ((latest,),) = reader.fetch(
        """SELECT max(occurred_at) FROM raw.events
           WHERE event_type <> 'recommendations.refreshed' AND event_type NOT LIKE 'notification.%'"""
    )
    if latest is None:
        raise ValueError("the warehouse holds no events yet: run the refresh job first")
    return pd.Timestamp(latest).tz_convert("UTC") + pd.Timedelta(microseconds=1)


def _day_after(moment: pd.Timestamp) -> pd.Timestamp:
    """Midnight (UTC) after the day of `moment`: the end of the last day with data."""
    return (moment - pd.Timedelta(microseconds=1)).normalize() + pd.Timedelta(days=1)


def _numbers(values: Mapping[str, Any]) -> dict[str, float]:
    """The numeric metrics as floats: Dagster plots float metadata over runs."""
    out: dict[str, float] = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            continue
        number = float(value)
        if number == number and abs(number) != float("inf"):
            out[key] = round(number, 6)
    return out


def _check(name: str, verdict: checks.Verdict) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=name,
        passed=verdict.passed,
        severity=checks.SEVERITY,
        description=verdict.description,
        metadata={k: v for k, v in verdict.metadata.items() if v is not None},
    )


def _save(
    ml: MlResource,
    name: str,
    model: Any,
    *,
    window: tuple[datetime, datetime],
    features: Sequence[str],
    metrics: Mapping[str, Any],
    data_version: str,
    good: bool,
    version: str | None = None,
) -> str:
    return registry.save_model(
        ml.registry,
        name,
        model,
        training_window=window,
        features=list(features),
        metrics=dict(metrics),
        data_version=data_version,
        good=good,
        version=version,
    )


def _record(
    writer: MlWriter, name: str, version: str, metrics: Mapping[str, Any], good: bool, dv: str
) -> None:
    writer.record_run(
        name, version, trained_at=datetime.now(UTC), metrics=metrics, good=good, data_version=dv
    )


def _window(start: Any, end: pd.Timestamp) -> tuple[datetime, datetime]:
    first = pd.Timestamp(start) if start is not None and not pd.isna(start) else end
    return (first.to_pydatetime(), end.to_pydatetime())


def _result(
    version: str, good: bool, seconds: float, metrics: Mapping[str, Any], rows: int, check: AssetCheckResult
) -> MaterializeResult[None]:
    metadata: dict[str, Any] = {
        **_numbers(metrics),
        "model_version": version,
        "good": good,
        "train_seconds": round(seconds, 3),
        "rows_written": rows if good else 0,
    }
    return MaterializeResult(metadata=metadata, check_results=[check])


def _dv(hwm: int) -> str:
    return f"events:{hwm}"


# --- truth file (the simulator's; absent on a real store) ----------------------------------------


def _promotions(truth: Mapping[str, Any] | None) -> pd.DataFrame | None:
    """Planned promotions: only the simulator writes them down (a shop plans them ahead)."""
    return planted.promotions(dict(truth)) if truth and truth.get("promotions") else None


def _personas(truth: Mapping[str, Any] | None) -> pd.Series | None:
    return planted.personas(dict(truth)) if truth and truth.get("users") else None


def _fraud_labels(truth: Mapping[str, Any] | None) -> set[int] | None:
    return planted.fraud_labels(dict(truth)) if truth and "fraudulentOrders" in truth else None


# --- demand --------------------------------------------------------------------------------------


@asset(
    group_name=GROUP,
    kinds={"python", "prophet"},
    deps=[*ORDER_LINE_DEPS, *PRODUCT_DEPS, _raw("events")],
    check_specs=[
        checks.spec(
            checks.FORECAST_CHECK,
            "demand_forecast",
            "Backtest sMAPE (last fortnight held out) below the seasonal-naive baseline's.",
        )
    ],
    description="Daily orders and units per category and shop for the next 30 days (prophet, with a "
    "fallback for sparse series), backtested against seasonal naive; restock suggestions. Writes "
    "ml.demand_forecast and ml.restock_suggestions; registry name `forecast`.",
)
def demand_forecast(
    context: AssetExecutionContext, warehouse: WarehouseResource, ml: MlResource
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster rejects a parameter with check specs
    with ml_writer(warehouse) as w:
        lines, products, hwm, end = (
            ml_frames.order_lines(w),
            ml_frames.products(w),
            ml_frames.events_high_water_mark(w),
            _data_end(w),
        )
    began = time.perf_counter()
    last_day = _day_after(end) - pd.Timedelta(days=1)
    try:
        result = fc.forecast_demand(lines, _promotions(ml.truth()), ml.forecast_config(), end=last_day)
    except fc.InsufficientHistory as exc:
        # A young platform: nothing is saved and the ml tables keep what they had; the check says why.
        context.log.warning(f"forecast skipped: {exc}")
        skipped = checks.Verdict(False, f"not trained: {exc}")
        return MaterializeResult(
            metadata={"skipped": str(exc), "good": False, "rows_written": 0},
            check_results=[_check(checks.FORECAST_CHECK, skipped)],
        )
    restock = fc.restock_suggestions(result.forecasts, lines, products)
    seconds = time.perf_counter() - began
    verdict = checks.forecast_verdict(result.summary)
    metrics = {**result.summary, "train_seconds": seconds}
    model = {"forecasts": result.forecasts, "metrics": result.metrics, "config": ml.forecast_config()}
    version = _save(
        ml,
        FORECAST,
        model,
        window=_window(lines["created_at"].min() if len(lines) else None, end),
        features=["daily orders", "daily units", "weekly rhythm", "promotions"],
        metrics=metrics,
        data_version=_dv(hwm),
        good=verdict.passed,
    )
    context.log.info(f"forecast {version}: {verdict.description} ({seconds:.1f}s)")
    forecast_rows = [
        (
            str(r.kind),
            int(r.key),
            pd.Timestamp(r.ds).date(),
            str(r.metric),
            float(r.yhat),
            float(r.yhat_lower),
            float(r.yhat_upper),
            str(r.method),
            version,
        )
        for r in result.forecasts.itertuples(index=False)
    ]
    restock_rows = [
        (
            int(r.product_id),
            int(r.shop_id),
            int(r.category_id),
            int(r.stock),
            float(r.daily_demand),
            float(r.demand_lead_time),
            float(r.demand_lead_time_upper),
            float(r.days_of_cover),
            pd.Timestamp(r.sell_out_date).date(),
            int(r.suggested_quantity),
            version,
        )
        for r in restock.itertuples(index=False)
    ]
    with ml_writer(warehouse) as w:
        if verdict.passed:
            w.replace("demand_forecast", forecast_rows)
            w.replace("restock_suggestions", restock_rows)
        _record(w, FORECAST, version, metrics, verdict.passed, _dv(hwm))
    return _result(
        version, verdict.passed, seconds, metrics, len(forecast_rows), _check(checks.FORECAST_CHECK, verdict)
    )


# --- prices --------------------------------------------------------------------------------------


@asset(
    group_name=GROUP,
    kinds={"python", "scikitlearn"},
    deps=[*ORDER_LINE_DEPS, *VIEW_DEPS],
    check_specs=[
        checks.spec(
            checks.PRICE_CHECK,
            "price_model",
            "Held-out log loss below, and AUC above, the same model without price.",
        )
    ],
    description="Purchase probability of a view against the price relative to the category's reference "
    "(logistic regression, time split), and the revenue-maximising price per product within +-30 %. "
    "Writes ml.price_suggestions; registry name `price`.",
)
def price_model(
    context: AssetExecutionContext, warehouse: WarehouseResource, ml: MlResource
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster rejects a parameter with check specs
    with ml_writer(warehouse) as w:
        products = ml_frames.products(w)
        views = ml_frames.views(w, products)
        lines = ml_frames.order_lines(w)
        hwm, end = ml_frames.events_high_water_mark(w), _data_end(w)
    began = time.perf_counter()
    reference = price.category_reference(products)
    model = price.train_price_model(price.label_purchases(views, lines), reference)
    prices = price.recommend_prices(model, products)
    seconds = time.perf_counter() - began
    verdict = checks.price_verdict(model.metrics)
    metrics = {**model.metrics, "slope": model.slope, "train_seconds": seconds}
    version = _save(
        ml,
        PRICE,
        model,
        window=_window(views["viewed_at"].min() if len(views) else None, end),
        features=[*price.FEATURES, "category", "weekday"],
        metrics=metrics,
        data_version=_dv(hwm),
        good=verdict.passed,
    )
    context.log.info(f"price {version}: {verdict.description}")
    shops = products.set_index("product_id")["shop_id"]
    rows = []
    for r in prices.itertuples(index=False):
        now_rev, best_rev = Decimal(r.revenue_per_100_views), Decimal(r.recommended_revenue_per_100_views)
        rows.append(
            (
                int(r.product_id),
                int(shops[int(r.product_id)]) if int(r.product_id) in shops.index else None,
                int(r.category_id),
                money(r.price),
                money(Decimal(str(round(model.reference[int(r.category_id)], 8)))),
                money(r.recommended_price),
                float(r.purchase_probability),
                float(r.recommended_purchase_probability),
                money(now_rev),
                money(best_rev),
                money(best_rev - now_rev),
                float(r.expected_revenue_change),
                version,
            )
        )
    with ml_writer(warehouse) as w:
        if verdict.passed:
            w.replace("price_suggestions", rows)
        _record(w, PRICE, version, metrics, verdict.passed, _dv(hwm))
    return _result(version, verdict.passed, seconds, metrics, len(rows), _check(checks.PRICE_CHECK, verdict))


# --- segments ------------------------------------------------------------------------------------

SHIFT_DAYS = 7


@asset(
    group_name=GROUP,
    kinds={"python", "scikitlearn"},
    deps=[
        *ORDER_LINE_DEPS,
        *VIEW_DEPS,
        _raw("users"),
        _raw("messages"),
        _raw("conversations"),
        _raw("shop_followers"),
    ],
    check_specs=[
        checks.spec(
            checks.SEGMENTS_CHECK,
            "customer_segments",
            "Silhouette above 0; agreement (ARI) with the simulator's personas when its truth file exists.",
        )
    ],
    description="Buyers clustered on RFM and behaviour features (k-means, k by silhouette), each segment "
    "named from its profile; the shift of segment sizes over the last week. Writes ml.user_segments; "
    "registry name `segments`.",
)
def customer_segments(
    context: AssetExecutionContext, warehouse: WarehouseResource, ml: MlResource
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster rejects a parameter with check specs
    with ml_writer(warehouse) as w:
        products = ml_frames.products(w)
        f = {
            "users": ml_frames.users(w),
            "orders": ml_frames.orders(w),
            "views": ml_frames.views(w, products),
            "messages": ml_frames.messages(w),
            "price_alerts": ml_frames.price_alerts(w),
            "follows": ml_frames.follows(w),
        }
        hwm, end = ml_frames.events_high_water_mark(w), _data_end(w)
    began = time.perf_counter()
    reference = price.category_reference(products)

    def features(as_of: pd.Timestamp) -> pd.DataFrame:
        return segments.user_features(
            f["users"],
            f["orders"],
            f["views"],
            reference=reference,
            as_of=as_of,
            messages=f["messages"],
            price_alerts=f["price_alerts"],
            follows=f["follows"],
        )

    seg = segments.segment_users(features(end))
    earlier = segments.assign_segments(seg, features(end - pd.Timedelta(days=SHIFT_DAYS)))
    shifts = segments.segment_shifts(earlier, seg.users)
    personas = _personas(ml.truth())
    ari = segments.persona_agreement(seg.users, personas) if personas is not None else None
    seconds = time.perf_counter() - began
    verdict = checks.segments_verdict(float(seg.metrics["silhouette"]), ari, ml.min_persona_ari)
    metrics = {
        **{k: v for k, v in seg.metrics.items() if k != "silhouette_by_k"},
        "silhouette_by_k": {str(k): v for k, v in seg.metrics["silhouette_by_k"].items()},
        "persona_ari": ari,
        "train_seconds": seconds,
        "sizes": {str(r.segment_name): int(r.size) for r in seg.profiles.itertuples(index=False)},
        f"shifts_{SHIFT_DAYS}d": shifts.to_dict("records"),
    }
    version = _save(
        ml,
        SEGMENTS,
        seg,
        window=_window(f["users"]["created_at"].min() if len(f["users"]) else None, end),
        features=list(segments.CLUSTER_FEATURES),
        metrics=metrics,
        data_version=_dv(hwm),
        good=verdict.passed,
    )
    context.log.info(f"segments {version}: {verdict.description}")
    rows = [
        (
            int(r.user_id),
            str(r.segment_name),
            int(r.segment),
            float(r.recency_days),
            float(r.frequency),
            money(r.monetary),
            float(r.views),
            float(r.conversion),
            float(r.view_rel_price),
            float(r.cancel_rate),
            float(r.tenure_days),
            version,
        )
        for r in seg.users.itertuples(index=False)
    ]
    with ml_writer(warehouse) as w:
        if verdict.passed:
            w.replace("user_segments", rows)
        _record(w, SEGMENTS, version, metrics, verdict.passed, _dv(hwm))
    return _result(
        version, verdict.passed, seconds, metrics, len(rows), _check(checks.SEGMENTS_CHECK, verdict)
    )


# --- recommendations -----------------------------------------------------------------------------

EVAL_DAYS = 14


@asset(
    group_name=GROUP,
    kinds={"python", "scipy"},
    deps=[*ORDER_LINE_DEPS, *VIEW_DEPS, _raw("users")],
    check_specs=[
        checks.spec(
            checks.RECOMMENDER_CHECK,
            "recommender",
            "precision@10 on the last fortnight's new interactions above popularity's.",
        )
    ],
    description="Seed 001 §3's recommendations blended with item-item collaborative filtering (blend "
    "tuned on a validation window), evaluated against popularity on later behaviour; 20 products per "
    "user written to the store's product_recommendations. Registry name `recommender`.",
)
def recommender(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    ml: MlResource,
    recommendations_store: RecommendationsStore,
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster rejects a parameter with check specs
    with ml_writer(warehouse) as w:
        products = ml_frames.products(w)
        views = ml_frames.views(w, products)
        lines = ml_frames.order_lines(w)
        people = ml_frames.users(w)
        hwm, end = ml_frames.events_high_water_mark(w), _data_end(w)
    began = time.perf_counter()
    interactions = recommend.interactions_from(views, lines)
    cutoff = end - pd.Timedelta(days=EVAL_DAYS)
    blend, by_blend = recommend.tune_blend(products, interactions, cutoff=cutoff)
    evaluation = recommend.evaluate(
        products, interactions, cutoff=cutoff, blend=blend, max_users=ml.recommend_eval_users
    )
    version = registry.new_version()
    rec = recommend.fit_recommender(products, interactions, as_of=end, blend=blend)
    rec.version = version
    user_ids = sorted(int(u) for u in people.loc[people["role"].isin(["buyer", "seller"]), "user_id"])
    table = recommend.recommendation_rows(rec, user_ids)
    seconds = time.perf_counter() - began
    verdict = checks.recommender_verdict(evaluation)
    metrics = {
        **evaluation,
        "blend_scores": {str(k): v for k, v in by_blend.items()},
        "train_seconds": seconds,
        "users_recommended": len(user_ids),
    }
    rec.metrics = metrics
    _save(
        ml,
        RECOMMENDER,
        rec,
        window=_window(interactions["at"].min() if len(interactions) else None, end),
        features=["views", "sales_count", "rating", "item-item cosine over views and purchases"],
        metrics=metrics,
        data_version=_dv(hwm),
        good=verdict.passed,
        version=version,
    )
    context.log.info(f"recommender {version}: {verdict.description}")
    written = 0
    if verdict.passed:
        rows = [
            (int(r.user_id), int(r.product_id), float(r.score), str(r.reason))
            for r in table.itertuples(index=False)
        ]
        # The store's own service writes the rows and the recommendations.refreshed event together.
        with recommendations_store.store() as store:
            written = replace_recommendations(store, rows, model_version=version, now=datetime.now(UTC))
    with ml_writer(warehouse) as w:
        _record(w, RECOMMENDER, version, metrics, verdict.passed, _dv(hwm))
    return _result(
        version, verdict.passed, seconds, metrics, written, _check(checks.RECOMMENDER_CHECK, verdict)
    )


# --- fraud ---------------------------------------------------------------------------------------


@asset(
    group_name=GROUP,
    kinds={"python", "scikitlearn"},
    deps=[_dbt("fct_orders"), _dbt("fct_product_views"), _raw("users"), _raw("events")],
    check_specs=[
        checks.spec(
            checks.FRAUD_CHECK,
            "fraud_model",
            "PR-AUC on later orders above the base rate (when fraud labels are known).",
        )
    ],
    description="Point-in-time order features, gradient boosting on labelled orders (IsolationForest "
    "without enough labels), evaluated on later orders; every order scored. Writes ml.fraud_scores; "
    "registry name `fraud` (the API scores orders with it as they are placed).",
)
def fraud_model(
    context: AssetExecutionContext, warehouse: WarehouseResource, ml: MlResource
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster rejects a parameter with check specs
    with ml_writer(warehouse) as w:
        products = ml_frames.products(w)
        orders = ml_frames.orders(w)
        people = ml_frames.users(w)
        logins = ml_frames.failed_logins(w)
        views = ml_frames.views(w, products)
        hwm, end = ml_frames.events_high_water_mark(w), _data_end(w)
    began = time.perf_counter()
    feats = fraud.order_features(orders, people, failed_logins=logins, views=views)
    known = _fraud_labels(ml.truth())
    labels = fraud.label_orders(feats, known or set())
    model = fraud.train_fraud_model(feats, labels)
    scores = fraud.score_orders(model, feats)
    seconds = time.perf_counter() - began
    verdict = checks.fraud_verdict(model.metrics, labelled=known is not None)
    metrics = {**model.metrics, "labelled": known is not None, "train_seconds": seconds}
    version = _save(
        ml,
        FRAUD,
        model,
        window=_window(orders["created_at"].min() if len(orders) else None, end),
        features=list(fraud.FEATURE_NAMES),
        metrics=metrics,
        data_version=_dv(hwm),
        good=verdict.passed,
    )
    context.log.info(f"fraud {version}: {verdict.description}")
    rows = [
        (int(o), int(b), float(s), bool(fraud.is_suspicious(model, float(s))), version)
        for o, b, s in zip(feats["order_id"], feats["buyer_id"], scores, strict=True)
    ]
    with ml_writer(warehouse) as w:
        if verdict.passed:
            w.replace("fraud_scores", rows)
        _record(w, FRAUD, version, metrics, verdict.passed, _dv(hwm))
    return _result(version, verdict.passed, seconds, metrics, len(rows), _check(checks.FRAUD_CHECK, verdict))


# --- insights ------------------------------------------------------------------------------------

SALES_SQL = """
SELECT i.placed_date, i.shop_id, p.category_id, CAST(sum(i.revenue_amount) AS DECIMAL(38, 8))
FROM marts.fct_order_items i
JOIN marts.dim_products p ON p.product_id = i.product_id
WHERE i.counts_as_revenue
GROUP BY i.placed_date, i.shop_id, p.category_id
"""
SHOP_DAYS_SQL = """
SELECT "date", shop_id, CAST(sum(orders) AS BIGINT) FROM marts.mart_shop_daily GROUP BY "date", shop_id
"""
RESTOCK_SQL = """
SELECT product_id, shop_id, stock, daily_demand, days_of_cover, suggested_quantity
FROM ml.restock_suggestions
"""
INSIGHT_LIMIT = 50


def explain(item: insights.Insight) -> str:
    """A second sentence under the title: what to look at next."""
    n = item.numbers
    if item.kind == "revenue_change":
        return (
            f"Revenue {n.get('revenue_last_week')} the week before against {n.get('revenue_this_week')} "
            "in the last 7 days; the category named moved the most."
        )
    if item.kind == "segment_shift":
        return f"{n.get('before')} buyers a week ago, {n.get('after')} now, by the current segmentation."
    if item.kind == "sell_out":
        return "From the demand forecast of the product's category and its share of recent sales."
    if item.kind == "anomaly":
        return f"A robust z-score of {float(n.get('robust_z', 0.0)):.1f} against the shop's last four weeks."
    return ""


@asset(
    group_name=GROUP,
    kinds={"python"},
    deps=[
        demand_forecast,
        customer_segments,
        _dbt("fct_order_items"),
        _dbt("dim_products"),
        _dbt("dim_shops"),
        _dbt("mart_shop_daily"),
    ],
    description="Ranked plain-language findings: shops' week-over-week revenue changes and the category "
    "behind them, segment shifts, likely sell-outs (from the forecast), unusual order days. Writes "
    "ml.insights.",
)
def ai_insights(
    context: AssetExecutionContext, warehouse: WarehouseResource, ml: MlResource
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster rejects a parameter with check specs
    with ml_writer(warehouse) as w:
        sales = pd.DataFrame(w.fetch(SALES_SQL), columns=["date", "shop_id", "category_id", "revenue"])
        daily = pd.DataFrame(w.fetch(SHOP_DAYS_SQL), columns=["date", "shop_id", "orders"])
        restock = pd.DataFrame(
            w.fetch(RESTOCK_SQL),
            columns=["product_id", "shop_id", "stock", "daily_demand", "days_of_cover", "suggested_quantity"],
        )
        names = {int(s): str(n) for s, n in w.fetch("SELECT shop_id, shop_name FROM marts.dim_shops")}
        hwm, end = ml_frames.events_high_water_mark(w), _data_end(w)
    began = time.perf_counter()
    as_of = _day_after(end)
    sales["date"] = pd.to_datetime(sales["date"])
    sales["revenue"] = [Decimal(v) for v in sales["revenue"]]
    sales = sales.dropna(subset=["category_id"])
    daily["date"] = pd.to_datetime(daily["date"])
    found: list[insights.Insight] = [
        *insights.revenue_changes(sales, as_of=as_of, shop_names=names),
        *insights.sell_outs(restock),
        *insights.order_anomalies(daily, as_of=as_of),
    ]
    seg_version = registry.latest_version(ml.registry, SEGMENTS)
    manifest = registry.read_manifest(ml.registry, SEGMENTS, seg_version) if seg_version else None
    shifts = (manifest or {}).get("metrics", {}).get(f"shifts_{SHIFT_DAYS}d")
    if shifts:
        found += insights.segment_changes(pd.DataFrame(shifts))
    ranked = insights.rank(found, limit=INSIGHT_LIMIT)
    version = registry.new_version()
    generated = datetime.now(UTC)
    rows = [
        (
            rank,
            i.kind,
            i.title,
            explain(i),
            float(i.score),
            None if i.subject.get("shop_id") is None else int(i.subject["shop_id"]),
            None if i.subject.get("product_id") is None else int(i.subject["product_id"]),
            to_json(i.subject),
            to_json(i.numbers),
            generated,
            version,
        )
        for rank, i in enumerate(ranked, start=1)
    ]
    seconds = time.perf_counter() - began
    kinds = pd.Series([i.kind for i in ranked], dtype=object).value_counts().to_dict()
    metrics: dict[str, Any] = {
        "insights": len(rows),
        "train_seconds": seconds,
        **{f"kind_{k}": int(v) for k, v in kinds.items()},
    }
    with ml_writer(warehouse) as w:
        w.replace("insights", rows)
        _record(w, INSIGHTS, version, metrics, True, _dv(hwm))
    context.log.info(f"{len(rows)} insights")
    return MaterializeResult(
        metadata={**_numbers(metrics), "model_version": version, "rows_written": len(rows)}
    )


assets = [demand_forecast, price_model, customer_segments, recommender, fraud_model, ai_insights]
