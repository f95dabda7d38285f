"""The AI Insights, Security and System reports on the trained simulated market: what they show is
checked against the warehouse's ml tables and the store itself, read independently (plain DuckDB and
SQLite queries), and the API's request counters against a real running API."""

from __future__ import annotations

import shutil
import socket
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

import dashboard.reports.sections.ai as ai
import dashboard.reports.sections.security as security
import dashboard.reports.sections.system as system
from api.core.settings import Settings
from dashboard.reports.builder import BuildContext, SectionSpec
from dashboard.reports.filters import Filters, Scope, scoped
from dashboard.reports.model import Cell, Report
from pipelines.ml.assets import MODEL_NAMES
from pipelines.run import instance_for, run_pipeline
from tests.pipelines.simulated import settings_for
from tests.pipelines.trained import TrainedMarket, trained_market  # noqa: F401
from warehouse.marts import money, open_marts
from warehouse.settings import warehouse_location

FILTERS = Filters(date(2026, 1, 5), date(2026, 2, 1))
NOW = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)
PLATFORM_ONLY_TABLES = {"segments", "model_quality", "fraud_queue", "fraud_scores"}


def build(spec: SectionSpec, settings: Settings, filters: Filters = FILTERS, scope: Scope = None) -> Report:
    with open_marts(settings) as reader:
        return spec.build(BuildContext(reader, settings, scoped(filters, scope), scope, NOW))


@contextmanager
def warehouse(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """The published snapshot, opened directly (not through the report's reader)."""
    conn = duckdb.connect()
    try:
        conn.execute(f"ATTACH '{warehouse_location(settings).snapshot}' AS w (READ_ONLY)")
        conn.execute("USE w")
        yield conn
    finally:
        conn.close()


def store_rows(settings: Settings, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    path = settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


def utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def in_period(moment: datetime, filters: Filters = FILTERS) -> bool:
    low, high = filters.bounds()
    return low <= moment < high


def store_orders_per_day(settings: Settings, shops: set[int] | None) -> Counter[date]:
    """Orders placed and not cancelled per UTC day, from the store."""
    counts: Counter[date] = Counter()
    for shop_id, status, created_at in store_rows(settings, "SELECT shop_id, status, created_at FROM orders"):
        moment = utc(created_at)
        if status != "cancelled" and (shops is None or shop_id in shops) and in_period(moment):
            counts[moment.date()] += 1
    return counts


def assert_charts_fit(report: Report) -> None:
    for chart in report.charts:
        t = report.table(chart.table)
        for name in (
            chart.x,
            *chart.y,
            *(chart.band or ()),
            *chart.y2,
            *([chart.series] if chart.series else []),
        ):
            t.column(name)


def day(value: Cell) -> date:
    assert isinstance(value, date), value
    return value


def moment(value: Cell) -> datetime:
    assert isinstance(value, datetime), value
    return value


def num(value: Cell) -> float:
    assert isinstance(value, int | float) and not isinstance(value, bool), value
    return float(value)


def nums(values: list[Cell]) -> list[float]:
    return [num(v) for v in values]


def forecast_points(report: Report) -> list[tuple[date, float, float, float]]:
    return [
        (day(r["date"]), num(r["yhat"]), num(r["lower"]), num(r["upper"]))
        for r in report.table("forecast").records()
        if r["yhat"] is not None
    ]


def history(report: Report) -> dict[date, int]:
    """The forecast table's actual orders per day (the period's history)."""
    rows = report.table("forecast").records()
    return {day(r["date"]): int(num(r["actual"])) for r in rows if r["actual"] is not None}


def metric(report: Report, label: str) -> Cell:
    return {m.label: m.value for m in report.metrics}[label]


# --- AI Insights ----------------------------------------------------------------------------------


def test_ai_report_on_the_platform_matches_the_ml_tables(trained_market: TrainedMarket) -> None:  # noqa: F811
    settings = trained_market.settings
    report = build(ai.SECTION, settings)
    assert report.title == "AI Insights"
    assert not [n for n in report.notes if ai.UNTRAINED_NOTE in n]
    assert {c.key for c in report.charts} == {"forecast", "segments", "model_quality", "fraud_scores"}
    assert_charts_fit(report)

    with warehouse(settings) as conn:
        # The platform's forecast: its shops' forecasts added up, day by day.
        per_shop = conn.execute(
            """SELECT "day", yhat, "lower", "upper" FROM ml.demand_forecast
               WHERE level = 'shop' AND measure = 'orders'"""
        ).fetchall()
        segments = conn.execute("SELECT segment_name, user_id FROM ml.user_segments").fetchall()
        suspicious = conn.execute(
            """SELECT f.order_id, f.score FROM ml.fraud_scores f
               JOIN marts.fct_orders o ON o.order_id = f.order_id
               WHERE f.suspicious AND o.placed_date BETWEEN ? AND ?""",
            [FILTERS.start, FILTERS.end],
        ).fetchall()
        all_scores = dict(conn.execute("SELECT order_id, suspicious FROM ml.fraud_scores").fetchall())
        runs = conn.execute("SELECT name, version, trained_at FROM ml.model_runs").fetchall()
        insights = conn.execute("SELECT rank FROM ml.insights ORDER BY rank").fetchall()

    sums: dict[date, list[float]] = {}
    for day, yhat, lower, upper in per_shop:
        acc = sums.setdefault(day, [0.0, 0.0, 0.0])
        acc[0] += yhat
        acc[1] += lower
        acc[2] += upper
    points = forecast_points(report)
    assert [p[0] for p in points] == sorted(sums)
    for day, yhat, lower, upper in points:
        assert (yhat, lower, upper) == pytest.approx(tuple(sums[day]))
        assert lower <= yhat <= upper
    # The history of the period: the store's orders, day by day.
    actual = history(report)
    expected = store_orders_per_day(settings, None)
    assert actual == {d: expected.get(d, 0) for d in actual}
    assert min(actual) == FILTERS.start and max(actual) == FILTERS.end
    assert sum(expected.values()) > 0

    seg = report.table("segments")
    assert sum(nums(seg.values("users"))) == len(segments)
    assert set(seg.values("segment")) == {s for s, _ in segments}
    assert sum(nums(seg.values("share"))) == pytest.approx(1.0)

    queue = report.table("fraud_queue")
    scores = nums(queue.values("score"))
    assert scores == sorted(scores, reverse=True)
    assert all(all_scores[o] for o in queue.values("order_id"))
    ranked = sorted(suspicious, key=lambda s: (-s[1], s[0]))[: ai.FRAUD_LIMIT]
    assert queue.values("order_id") == [o for o, _ in ranked]
    assert suspicious and {m.label: m.value for m in report.metrics}["Suspicious orders"] == len(suspicious)
    # Each queued order as the store has it.
    for row in queue.records()[:5]:
        ((buyer, shop, amount, status),) = store_rows(
            settings,
            "SELECT buyer_id, shop_id, total_amount, status FROM orders WHERE id = ?",
            (row["order_id"],),
        )
        assert (row["buyer_id"], row["shop_id"], row["status"]) == (buyer, shop, status)
        assert row["amount"] == money(Decimal(repr(amount)) if isinstance(amount, float) else Decimal(amount))
    histogram = report.table("fraud_scores")
    assert sum(nums(histogram.values("orders"))) == sum(
        1 for r in store_rows(settings, "SELECT created_at FROM orders") if in_period(utc(r[0]))
    )
    assert sum(nums(histogram.values("suspicious"))) == len(suspicious)

    quality = {r["model"]: r for r in report.table("model_quality").records()}
    assert set(MODEL_NAMES) <= set(quality)
    newest = {}
    for name, version, _ in sorted(runs, key=lambda r: r[2]):
        newest[name] = version
    for name in MODEL_NAMES:
        row = quality[name]
        assert row["version"] == newest[name]
        assert isinstance(row["value"], float) and isinstance(row["baseline"], float), row
        if row["good"]:  # a good model beat its baseline: lower sMAPE, higher everything else
            assert row["value"] < row["baseline"] if name == "forecast" else row["value"] > row["baseline"]

    prices = report.table("price_suggestions")
    changes = nums(prices.values("revenue_change_pct"))
    assert changes and changes == sorted(changes, reverse=True)
    assert all(c > 0 for c in changes)
    restock = report.table("restock_suggestions")
    sell_out = [day(v) for v in restock.values("sell_out_date")]
    assert sell_out == sorted(sell_out)
    assert report.table("insights").values("rank") == [r for (r,) in insights]


def test_ai_forecast_of_a_shop_or_category_is_its_own_series(trained_market: TrainedMarket) -> None:  # noqa: F811
    settings = trained_market.settings
    with warehouse(settings) as conn:
        shop, category = conn.execute(
            """SELECT (SELECT min("key") FROM ml.demand_forecast WHERE level = 'shop'),
                      (SELECT min("key") FROM ml.demand_forecast WHERE level = 'category')"""
        ).fetchone() or (None, None)

        def series(level: str, key: int) -> list[tuple[date, float, float, float]]:
            return [
                (r[0], r[1], r[2], r[3])
                for r in conn.execute(
                    """SELECT "day", yhat, "lower", "upper" FROM ml.demand_forecast
                       WHERE level = ? AND "key" = ? AND measure = 'orders' ORDER BY "day" """,
                    [level, key],
                ).fetchall()
            ]

        shop_series, category_series = series("shop", shop), series("category", category)
    assert shop_series and category_series

    by_shop = build(ai.SECTION, settings, Filters(FILTERS.start, FILTERS.end, shop_id=shop))
    assert forecast_points(by_shop) == shop_series
    by_category = build(ai.SECTION, settings, Filters(FILTERS.start, FILTERS.end, category_id=category))
    assert forecast_points(by_category) == category_series
    assert all(lo <= y <= hi for _, y, lo, hi in shop_series + category_series)


def test_ai_report_before_any_training_says_so(trained_market: TrainedMarket) -> None:  # noqa: F811
    settings = trained_market.untrained
    with warehouse(settings) as conn:
        assert conn.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'ml'"
        ).fetchone() == (0,)
    report = build(ai.SECTION, settings)
    assert f"{ai.UNTRAINED_NOTE}." in report.notes
    for t in report.tables:
        if t.name != "forecast":
            assert t.rows == (), t.name
    forecast = report.table("forecast")
    assert forecast.values("yhat") == [None] * len(forecast.rows)
    assert sum(v for v in forecast.values("actual") if isinstance(v, int)) > 0  # the history is still there


def test_a_shop_owner_sees_only_their_shops(trained_market: TrainedMarket) -> None:  # noqa: F811
    settings = trained_market.settings
    ((owner, shop),) = store_rows(settings, "SELECT owner_id, id FROM shops ORDER BY id LIMIT 1")
    assert owner is not None
    with warehouse(settings) as conn:
        own_series = conn.execute(
            """SELECT "day", yhat, "lower", "upper" FROM ml.demand_forecast
               WHERE level = 'shop' AND "key" = ? AND measure = 'orders' ORDER BY "day" """,
            [shop],
        ).fetchall()
        own_insights = conn.execute(
            "SELECT rank FROM ml.insights WHERE shop_id = ? ORDER BY rank", [shop]
        ).fetchall()
        own_prices = conn.execute(
            "SELECT count(*) FROM ml.price_suggestions WHERE shop_id = ? AND expected_revenue_change_pct > 0",
            [shop],
        ).fetchone()

    report = build(ai.SECTION, settings, scope=(shop,))
    assert not PLATFORM_ONLY_TABLES & {t.name for t in report.tables}
    assert {c.key for c in report.charts} == {"forecast"}
    assert_charts_fit(report)
    assert any("not shown to shop owners" in n for n in report.notes)
    assert forecast_points(report) == [tuple(r) for r in own_series]
    actual = history(report)
    expected = store_orders_per_day(settings, {shop})
    assert actual == {d: expected.get(d, 0) for d in actual} and sum(actual.values()) > 0
    prices = report.table("price_suggestions")
    assert prices.rows and set(prices.values("shop_id")) == {shop}
    assert own_prices is not None
    assert {m.label: m.value for m in report.metrics}["Price suggestions"] == own_prices[0]
    assert set(report.table("restock_suggestions").values("shop_id")) <= {shop}
    assert report.table("insights").values("rank") == [r for (r,) in own_insights]
    assert set(report.table("insights").values("shop_id")) <= {shop}

    # Two shops: their forecasts added up, their rows only.
    shops = (shop, shop + 1)
    both = build(ai.SECTION, settings, scope=shops)
    assert set(both.table("price_suggestions").values("shop_id")) <= set(shops)
    own = {d: y for d, y, _, _ in own_series}
    alone = {d: y for d, y, _, _ in forecast_points(build(ai.SECTION, settings, scope=(shop + 1,)))}
    for d, yhat, _, _ in forecast_points(both):
        assert yhat == pytest.approx(own[d] + alone[d])


# --- Security -------------------------------------------------------------------------------------


def test_security_failed_logins_are_the_stores(trained_market: TrainedMarket) -> None:  # noqa: F811
    settings = trained_market.settings
    failures = [
        (entity, utc(at))
        for entity, at in store_rows(
            settings, "SELECT entity_id, occurred_at FROM events WHERE event_type = 'user.login_failed'"
        )
    ]
    in_range = [(e, at) for e, at in failures if in_period(at)]
    assert in_range, "the simulator's fraudsters fail logins"
    per_account = Counter(e for e, _ in in_range if e is not None)

    report = build(security.SECTION, settings)
    assert report.title == "Security"
    assert security.SECTION.platform_only
    assert_charts_fit(report)
    metrics = {m.label: m.value for m in report.metrics}
    assert metrics["Failed logins"] == len(in_range)
    assert metrics[f"Accounts with {security.MANY_FAILURES}+ failures"] == sum(
        1 for n in per_account.values() if n >= security.MANY_FAILURES
    )
    per_day = report.table("failed_logins")
    assert sum(nums(per_day.values("failed_logins"))) == len(in_range)
    by_day = Counter(at.date() for _, at in in_range)
    assert {r["date"]: r["failed_logins"] for r in per_day.records() if r["failed_logins"]} == dict(by_day)
    targeted = report.table("targeted_accounts")
    assert {r["user_id"]: r["failed_logins"] for r in targeted.records()} == dict(
        per_account.most_common(security.TOP)
    )
    counts = nums(targeted.values("failed_logins"))
    assert counts == sorted(counts, reverse=True)

    # A shorter period counts only its own days.
    week = Filters(date(2026, 1, 19), date(2026, 1, 25))
    shorter = build(security.SECTION, settings, week)
    assert {m.label: m.value for m in shorter.metrics}["Failed logins"] == sum(
        1 for _, at in failures if in_period(at, week)
    )


# --- the API's counters ---------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_reports_count_the_apis_requests(trained_market: TrainedMarket, server_url: str) -> None:  # noqa: F811
    assert httpx.get(f"{server_url}/health").status_code == 200
    assert httpx.get(f"{server_url}/no/such/page").status_code == 404
    for _ in range(3):
        assert httpx.get(f"{server_url}/api/metrics").status_code == 401  # staff only
    settings = trained_market.settings.model_copy(update={"public_base_url": server_url})

    report = build(system.SECTION, settings)
    assert_charts_fit(report)
    routes = {r["endpoint"]: r for r in report.table("api_routes").records()}
    assert (routes["GET <unmatched>"]["requests"], routes["GET <unmatched>"]["client_errors"]) == (1, 1)
    assert (routes["GET /api/metrics"]["requests"], routes["GET /api/metrics"]["client_errors"]) == (3, 3)
    assert (routes["GET /health"]["requests"], routes["GET /health"]["server_errors"]) == (1, 0)
    health = routes["GET /health"]
    assert num(health["p50_ms"]) <= num(health["p95_ms"]) <= num(health["p99_ms"])
    assert {m.label: m.value for m in report.metrics}["API requests"] == 5
    assert not [n for n in report.notes if "could not be read" in n]

    refused = build(security.SECTION, settings)
    rows = [(r["endpoint"], r["status"], r["requests"]) for r in refused.table("refused_requests").records()]
    assert rows == [("GET /api/metrics", 401, 3)]
    metrics = {m.label: m.value for m in refused.metrics}
    assert (metrics["Refused requests (401/403)"], metrics["Rate-limited requests (429)"]) == (3, 0)


def test_an_unreachable_api_leaves_the_request_tables_empty(trained_market: TrainedMarket) -> None:  # noqa: F811
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = trained_market.settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}"})
    for spec, name in ((system.SECTION, "api_routes"), (security.SECTION, "refused_requests")):
        report = build(spec, settings)
        assert report.table(name).rows == ()
        assert any(f"127.0.0.1:{port}/metrics could not be read" in n for n in report.notes)
    assert {m.label: m.value for m in report.metrics}["Refused requests (401/403)"] is None


# --- System ---------------------------------------------------------------------------------------


def test_system_report_shows_loads_runs_and_checks(trained_market: TrainedMarket, tmp_path: Path) -> None:  # noqa: F811
    settings = trained_market.settings
    report = build(system.SECTION, settings)
    assert report.title == "System"
    assert_charts_fit(report)
    ((orders,),) = store_rows(settings, "SELECT count(*) FROM orders")
    stream = {r["stream"]: r for r in report.table("streams").records()}["events"]
    mark = stream["high_water_mark"]
    ((loaded,),) = store_rows(settings, "SELECT count(*) FROM events WHERE id <= ?", (mark,))
    assert (stream["rows_total"], stream["lag"]) == (loaded, 0)
    # Since the load the store only gained what the train job wrote back (the recommendations).
    later = store_rows(settings, "SELECT DISTINCT event_type FROM events WHERE id > ?", (mark,))
    assert later == [("recommendations.refreshed",)]
    assert {r["table_name"]: r["row_count"] for r in report.table("snapshots").records()}["orders"] == orders
    size = {r["part"]: r["bytes"] for r in report.table("warehouse_size").records()}
    assert size["read snapshot"] == warehouse_location(settings).snapshot.stat().st_size
    # The fixture ran its pipelines on an ephemeral Dagster instance: nothing is recorded.
    assert system.NO_INSTANCE_NOTE in report.notes
    assert report.table("pipeline_runs").rows == () and report.table("asset_checks").rows == ()
    assert not (settings.data_dir / "dagster").exists()  # and reading did not create one

    # A copy of the market, trained again with the run recorded in its data dir's instance.
    home = tmp_path / "market"
    shutil.copytree(settings.data_dir.parent, home)
    copy = settings_for(home, home / "store.db")
    began = datetime.now(UTC)
    with instance_for(copy) as instance:
        summary = run_pipeline(copy, instance=instance, job="train")
    assert summary.success, summary.failures

    recorded = build(system.SECTION, copy)
    assert system.NO_INSTANCE_NOTE not in recorded.notes
    ((run),) = recorded.table("pipeline_runs").records()
    assert (run["run_id"], run["job"], run["status"]) == (summary.run_id, "train_models", "SUCCESS")
    started, ended = moment(run["started_at"]), moment(run["ended_at"])
    assert began - timedelta(seconds=1) <= started <= ended <= datetime.now(UTC)
    assert num(run["seconds"]) == pytest.approx((ended - started).total_seconds())
    checks = recorded.table("asset_checks")
    assert {r["check"]: r["passed"] for r in checks.records()} == dict(summary.checks)
    assert set(checks.values("severity")) == {"WARN"}  # the model checks warn, never block
    passed = [bool(v) for v in checks.values("passed")]
    assert passed == sorted(passed)  # failed first
    assert {m.label: m.value for m in recorded.metrics}["Failing checks"] == sum(
        1 for ok in summary.checks.values() if not ok
    )
