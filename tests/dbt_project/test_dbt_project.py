"""The dbt project over a store made by the real simulator through the real API and loaded by the real
ingest, on DuckDB and on PostgreSQL: it builds with every test passing, mart_shop_daily equals the
store recomputed independently, late events land in their own day and a rerun changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine

from api.core.clock import ManualClock
from api.db.engine import Store
from api.main import create_app
from tests.dbt_project.conftest import START, Warehouse, store_settings
from tests.dbt_project.shop_daily_truth import MART_SQL, expected_shop_daily, mart_shop_daily
from tests.helpers import Api, data

# The contract's columns (docs: /work/briefs/contract.md) as each target names their types.
CONTRACT: dict[str, dict[str, str]] = {
    "mart_shop_daily": {
        "shop_id": "bigint",
        "date": "date",
        "currency": "text",
        "views": "bigint",
        "unique_visitors": "bigint",
        "product_views": "bigint",
        "messages_received": "bigint",
        "orders": "bigint",
        "paid_orders": "bigint",
        "revenue": "money",
        "new_followers": "bigint",
        "conversion_rate": "double",
        "avg_order_value": "money",
    },
    "mart_platform_daily": {
        "date": "date",
        "active_users": "bigint",
        "new_users": "bigint",
        "buyers": "bigint",
        "orders": "bigint",
        "paid_orders": "bigint",
        "revenue": "money",
        "avg_order_value": "money",
        "conversion_rate": "double",
        "churned_users": "bigint",
        "churn_rate": "double",
    },
    "mart_revenue_daily": {
        "date": "date",
        "currency": "text",
        "orders": "bigint",
        "paid_orders": "bigint",
        "revenue": "money",
        "avg_order_value": "money",
        "cumulative_revenue": "money",
    },
}
TYPE_NAMES = {
    "duckdb": {
        "bigint": "BIGINT",
        "date": "DATE",
        "text": "VARCHAR",
        "double": "DOUBLE",
        "money": "DECIMAL(38,8)",
    },
    "postgres": {
        "bigint": "bigint",
        "date": "date",
        "text": "text",
        "double": "double precision",
        "money": "numeric(38,8)",
    },
}
# Counted to show a rerun changes nothing: every incremental model and the marts they feed.
STATE_TABLES = (
    "staging.stg_events",
    "staging.stg_events__product_viewed",
    "intermediate.int_user_events",
    "intermediate.int_user_daily_activity",
    "marts.fct_product_views",
    "marts.fct_messages",
    "marts.fct_orders",
    "marts.mart_sessions",
    "marts.mart_platform_daily",
)


@pytest.fixture
def store_engine(store_db: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{store_db}")
    yield engine
    engine.dispose()


def _column_types(wh: Warehouse, schema: str, table: str) -> dict[str, str]:
    if wh.target == "duckdb":
        sql = f"""SELECT column_name, data_type FROM information_schema.columns
                  WHERE table_schema = '{schema}' AND table_name = '{table}'"""
        return dict(wh.query(sql))
    sql = f"""SELECT a.attname, format_type(a.atttypid, a.atttypmod)
              FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = '{schema}' AND c.relname = '{table}' AND a.attnum > 0
                AND NOT a.attisdropped"""
    return {c: t.replace(", ", ",") for c, t in wh.query(sql)}


def _assert_matches_store(wh: Warehouse, engine: Engine) -> dict[tuple[int, Any], dict[str, Any]]:
    expected = expected_shop_daily(engine)
    actual = mart_shop_daily(wh.query(MART_SQL))
    assert sorted(actual) == sorted(expected)
    mismatches = {
        key: {c: (actual[key][c], v) for c, v in row.items() if actual[key][c] != v}
        for key, row in expected.items()
        if actual[key] != row
    }
    assert not mismatches, list(mismatches.items())[:5]
    return actual


def _state(wh: Warehouse) -> dict[str, Any]:
    state: dict[str, Any] = {t: wh.query(f"SELECT count(*) FROM {t}")[0][0] for t in STATE_TABLES}
    state["revenue"] = wh.query("SELECT sum(revenue), sum(views), sum(orders) FROM marts.mart_shop_daily")[0]
    state["platform"] = wh.query("SELECT * FROM marts.mart_platform_daily ORDER BY date")
    state["sessions"] = wh.query("SELECT session_id, events FROM marts.mart_sessions ORDER BY session_id")
    return state


def _assert_documented(wh: Warehouse) -> None:
    """Every model and every column it builds has a description; every metric model has unit tests."""
    manifest = json.loads((wh.work / "target" / "manifest.json").read_text())
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    assert len(models) >= 35
    undocumented = []
    for node in models:
        if not node["description"].strip():
            undocumented.append(node["name"])
        built = _column_types(wh, node["schema"], node["alias"])
        assert built, node["name"]
        documented = {c for c, col in node["columns"].items() if col["description"].strip()}
        undocumented += [f"{node['name']}.{c}" for c in sorted(set(built) - documented)]
    assert not undocumented
    tested = {t["model"] for t in manifest["unit_tests"].values()}
    metric_models = {
        "mart_shop_daily",
        "mart_platform_daily",
        "int_platform_churn_daily",
        "mart_cohort_retention",
        "mart_user_rfm",
        "mart_sessions",
        "mart_funnel",
        "fct_orders",
        "int_shop_views_daily",
        "stg_events__product_viewed",
    }
    assert metric_models <= tested


def test_dbt_builds_the_marts_to_contract_and_mart_shop_daily_equals_the_store(
    warehouse: Warehouse, store_engine: Engine
) -> None:
    result = warehouse.build()
    print(f"\nfull dbt build on {warehouse.target}: {result.seconds:.1f} s")  # noqa: T201 (the measure)
    run = json.loads((warehouse.work / "target" / "run_results.json").read_text())
    statuses = {r["unique_id"]: r["status"] for r in run["results"]}
    assert statuses and set(statuses.values()) <= {"success", "pass"}, statuses
    assert {"model", "test", "unit_test"} <= {uid.split(".")[0] for uid in statuses}

    names = TYPE_NAMES[warehouse.target]
    for table, columns in CONTRACT.items():
        actual_types = _column_types(warehouse, "marts", table)
        assert {c: actual_types.get(c) for c in columns} == {c: names[t] for c, t in columns.items()}, table
    schemas = {r[0] for r in warehouse.query("SELECT DISTINCT table_schema FROM information_schema.tables")}
    assert {"raw", "staging", "intermediate", "marts"} <= schemas
    _assert_documented(warehouse)

    # Every shop has a row for every day from its creation day to the last day with data, and each
    # row equals the store's own tables recomputed independently.
    (days,) = warehouse.query("SELECT count(*) FROM marts.dim_date")[0]
    per_shop = warehouse.query(
        """SELECT s.shop_id, count(m.date), min(m.date) = s.created_date
           FROM marts.dim_shops s LEFT JOIN marts.mart_shop_daily m ON m.shop_id = s.shop_id
           GROUP BY s.shop_id, s.created_date"""
    )
    assert per_shop and all(first for _, _, first in per_shop)
    assert max(n for _, n, _ in per_shop) == days
    rows = list(_assert_matches_store(warehouse, store_engine).values())
    # The comparison is not vacuous: the simulated days sold, were viewed, messaged and followed.
    for column in ("views", "unique_visitors", "messages_received", "orders", "paid_orders", "new_followers"):
        assert sum(r[column] for r in rows) > 0, column
    assert sum(r["revenue"] for r in rows) > Decimal(0)
    assert any(r["avg_order_value"] is not None and r["conversion_rate"] is not None for r in rows)


def _late_activity(database_url: str, data_dir: Path, at: datetime) -> tuple[int, int, Decimal]:
    """Through the real API with the clock set back to `at`: a new user views a product, orders it and
    pays. Returns the shop, the product and the order total."""
    settings = store_settings(Path(database_url.removeprefix("sqlite:///")), data_dir)
    clock = ManualClock(at, tick=timedelta(milliseconds=1))
    store = Store.from_settings(settings)
    try:
        with TestClient(create_app(settings, clock=clock, store=store)) as client:
            api = Api(client, store, clock)
            products = data(client.get("/api/products", params={"pageSize": 50}))
            product = next(p for p in products if p["stock"] > 0)
            buyer = api.user()
            data(
                client.post(
                    "/api/track/view",
                    json={"productId": product["id"], "sessionId": "late-1"},
                    headers=buyer.headers,
                ),
                201,
            )
            order = data(
                client.post(
                    "/api/orders",
                    json={
                        "items": [{"productId": product["id"], "quantity": 1}],
                        "shippingAddress": "1 Late St",
                    },
                    headers={**buyer.headers, "Idempotency-Key": "late-order-1"},
                ),
                201,
            )
            data(client.put(f"/api/orders/{order['id']}/pay", json=None, headers=buyer.headers))
    finally:
        store.engine.dispose()
    return int(product["shopId"]), int(product["id"]), Decimal(str(order["totalAmount"]))


def test_late_events_land_in_their_day_and_a_rerun_changes_nothing(
    warehouse: Warehouse, store_db: Path, store_engine: Engine, tmp_path: Path
) -> None:
    database_url = f"sqlite:///{store_db}"
    # Models only: the other test runs the data tests over the same data.
    assert warehouse.dbt("run").ok
    before = _state(warehouse)
    marts_before = mart_shop_daily(warehouse.query(MART_SQL))

    # Nothing new: an ingest run that finds no events, then dbt again.
    assert warehouse.load(datetime.now(UTC)) == 0
    assert warehouse.dbt("run").ok
    assert _state(warehouse) == before
    assert mart_shop_daily(warehouse.query(MART_SQL)) == marts_before

    # Late: activity stamped on the simulation's second day, loaded now.
    late_day = START + timedelta(days=1)
    shop_id, product_id, total = _late_activity(
        database_url, tmp_path / "late-data", datetime.combine(late_day, time(12, 0), UTC)
    )
    assert warehouse.load(datetime.now(UTC) + timedelta(minutes=1)) > 0
    assert warehouse.dbt("run").ok

    after = mart_shop_daily(warehouse.query(MART_SQL))
    key = (shop_id, late_day)
    old, new = marts_before[key], after[key]
    assert new["views"] == old["views"] + 1
    assert new["unique_visitors"] == old["unique_visitors"] + 1
    assert new["orders"] == old["orders"] + 1
    assert new["paid_orders"] == old["paid_orders"] + 1
    assert new["revenue"] == old["revenue"] + total
    assert {k: v for k, v in after.items() if k != key} == {k: v for k, v in marts_before.items() if k != key}
    late_views = warehouse.query(
        "SELECT view_date FROM marts.fct_product_views "
        f"WHERE session_id = 'late-1' AND product_id = {product_id}"
    )
    assert late_views == [(late_day,)]
    assert (
        warehouse.query("SELECT count(*) FROM marts.fct_product_views")[0][0]
        == before["marts.fct_product_views"] + 1
    )
    _assert_matches_store(warehouse, store_engine)

    # And once more with nothing new, data tests included: still nothing changes.
    settled = _state(warehouse)
    assert warehouse.load(datetime.now(UTC) + timedelta(minutes=2)) == 0
    warehouse.build()
    assert _state(warehouse) == settled
