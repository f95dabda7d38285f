"""The whole refresh (load, raw checks, dbt build and tests, mart checks, publish) over a store made by the
simulator, on a DuckDB warehouse and on a PostgreSQL one; bad data stopped before the marts; the
new-events sensor."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, RunRequest, SkipReason, build_sensor_context
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pipelines.ingest.resources import StoreResource, WarehouseResource
from pipelines.ingest.sensors import refresh_on_new_events
from pipelines.quality.suites import MART_SUITES, RAW_SUITES
from pipelines.run import PipelineSummary, run_pipeline
from tests.conftest import PG_ADMIN_URL, service_missing
from tests.pipelines.simulated import (
    copy_store,
    duckdb_rows,
    mart_stats,
    settings_for,
    simulate,
    store_revenue_by_shop_day,
)
from warehouse.settings import warehouse_location

MODEL_LAYERS = ("staging/", "intermediate/", "marts/")


@pytest.fixture(scope="module")
def simulated_store(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Path:
    return simulate(tmp_path_factory.mktemp("simulated"), sqlite_template)


@pytest.fixture
def pg_warehouse() -> Iterator[str]:
    """A throwaway PostgreSQL database for one warehouse."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"warehouse_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        service_missing("PostgreSQL", str(exc).splitlines()[0])
    yield (
        make_url(PG_ADMIN_URL)
        .set(drivername="postgresql", database=name)
        .render_as_string(hide_password=False)
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _assert_complete(summary: PipelineSummary) -> None:
    assert summary.success, summary.failures
    assert summary.failures == ()
    failed = [name for name, passed in summary.checks.items() if not passed]
    assert failed == []
    # Every suite of ours ran, and dbt's own tests came back as checks too.
    ours = {s.name for s in (*RAW_SUITES, *MART_SUITES)}
    assert ours <= set(summary.checks)
    assert len(set(summary.checks) - ours) > 50
    models = [k for k in summary.materialized if k.startswith(MODEL_LAYERS)]
    assert {"marts/mart_shop_daily", "marts/mart_platform_daily", "marts/mart_revenue_daily"} <= set(models)
    assert "warehouse_snapshot" in summary.materialized


def _mart_revenue(rows: list[tuple[Any, ...]]) -> dict[tuple[int, Any], Decimal]:
    return {(int(shop), day): Decimal(rev) for shop, day, rev in rows if rev != 0}


SHOP_DAY_REVENUE = "SELECT shop_id, date, revenue FROM marts.mart_shop_daily"


def test_a_refresh_on_duckdb_builds_checked_marts_that_match_the_store(
    simulated_store: Path, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, copy_store(simulated_store, tmp_path))
    summary = run_pipeline(settings)
    _assert_complete(summary)

    # Readers (the published snapshot) see marts whose revenue is the store's, shop-day by shop-day.
    rows = duckdb_rows(warehouse_location(settings).snapshot)
    expected = store_revenue_by_shop_day(tmp_path / "store.db")
    assert expected, "the simulation paid for some orders"
    assert _mart_revenue(rows(SHOP_DAY_REVENUE)) == expected
    stats = mart_stats(rows)
    assert stats["mart_shop_daily"][0] > 0 and stats["fct_orders"][0] > 0


def test_a_refresh_on_a_postgres_warehouse_builds_the_same_checked_marts(
    simulated_store: Path, tmp_path: Path, pg_warehouse: str
) -> None:
    settings = settings_for(tmp_path, copy_store(simulated_store, tmp_path), warehouse_url=pg_warehouse)
    summary = run_pipeline(settings)
    _assert_complete(summary)
    assert summary.materialized["warehouse_snapshot"]["target"] == "postgres"
    assert not warehouse_location(settings).path.exists(), "nothing written to a DuckDB file"

    warehouse = WarehouseResource(path=str(tmp_path / "unused.duckdb"), url=pg_warehouse)
    assert _mart_revenue(warehouse.rows(SHOP_DAY_REVENUE)) == store_revenue_by_shop_day(tmp_path / "store.db")
    assert mart_stats(warehouse.rows)["mart_shop_daily"][0] > 0


def _spoil(store_db: Path) -> None:
    """What a buggy writer or a hand-edit could leave in the store: a negative price and a follower who
    does not exist (the store's own constraints switched off to write them)."""
    conn = sqlite3.connect(store_db)
    try:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("UPDATE products SET price = '-5.00000000' WHERE id = (SELECT min(id) FROM products)")
        conn.execute(
            "INSERT INTO shop_followers (user_id, shop_id, created_at) "
            "SELECT 987654321, shop_id, created_at FROM shop_followers LIMIT 1"
        )
        conn.commit()
    finally:
        conn.close()


def _null_event_batch(settings: Any) -> None:
    """A batch in raw.events with no event_id and no type, loaded after everything else."""
    with WarehouseResource(path=str(warehouse_location(settings).path)).connect() as wh:
        later = datetime.now(UTC) + timedelta(days=1)
        wh.execute(
            "INSERT INTO raw.events BY NAME SELECT * REPLACE (-1 AS id, NULL AS event_id, "
            "NULL AS event_type, ?::TIMESTAMPTZ AS _loaded_at) FROM raw.events LIMIT 1",
            [later],
        )


def test_bad_data_is_caught_and_the_marts_are_neither_rebuilt_nor_published(
    simulated_store: Path, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, copy_store(simulated_store, tmp_path))
    first = run_pipeline(settings)
    assert first.success, first.failures
    snapshot = warehouse_location(settings).snapshot
    published = snapshot.stat().st_mtime_ns
    marts_before = mart_stats(duckdb_rows(snapshot))

    _spoil(tmp_path / "store.db")
    _null_event_batch(settings)
    second = run_pipeline(settings)

    assert not second.success
    failed = {name for name, passed in second.checks.items() if not passed}
    assert {"raw_products_valid", "raw_shop_followers_valid", "raw_events_latest_batch_valid"} <= failed
    # The raw layer took the bad rows, but nothing was built from them and readers never saw them.
    assert "raw_products" in second.materialized
    assert [k for k in second.materialized if k.startswith(MODEL_LAYERS)] == []
    assert "warehouse_snapshot" not in second.materialized
    assert snapshot.stat().st_mtime_ns == published
    assert mart_stats(duckdb_rows(snapshot)) == marts_before
    assert any("blocking asset check" in f for f in second.failures), second.failures


def test_the_sensor_requests_a_refresh_only_for_events_past_the_mark(
    simulated_store: Path, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, copy_store(simulated_store, tmp_path))
    resources = {
        "store": StoreResource(database_url=settings.database_url),
        "warehouse": WarehouseResource(path=str(warehouse_location(settings).path)),
    }
    with DagsterInstance.ephemeral() as instance:
        with build_sensor_context(instance=instance, resources=resources) as context:
            request = refresh_on_new_events(context)
        assert isinstance(request, RunRequest)
        newest = StoreResource(database_url=settings.database_url).max_event_id()
        assert request.run_key == f"events-up-to-{newest}"

        assert run_pipeline(settings, job="ingest").success
        with build_sensor_context(instance=instance, resources=resources) as context:
            skipped = refresh_on_new_events(context)
        assert isinstance(skipped, SkipReason)
        assert "no new events" in (skipped.skip_message or "")
