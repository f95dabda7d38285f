"""The ML assets over a simulated store loaded by the real pipeline: the train job trains every model,
checks it against its baseline, saves it to the registry, writes the ml tables and the store's
recommendations, and publishes them; a model that fails its check is kept out; the refresh job never
trains; the warehouse's frames are the store's; and the same job on a PostgreSQL warehouse."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey
from sqlalchemy import create_engine, text

from ml import registry
from pipelines.definitions import build_definitions
from pipelines.ml.assets import _data_end
from pipelines.ml.assets import assets as ml_asset_defs
from pipelines.ml.checks import (
    FORECAST_CHECK,
    FRAUD_CHECK,
    PRICE_CHECK,
    RECOMMENDER_CHECK,
    SEGMENTS_CHECK,
)
from pipelines.quality.suites import MART_SUITES, RAW_SUITES
from pipelines.run import run_pipeline
from tests.ml.frames import read_frames as store_frames
from tests.pipelines.simulated import settings_for
from tests.pipelines.trained import TrainedMarket, trained_market
from tests.warehouse.targets import create_pg_database, drop_pg_database, wh_rows
from warehouse import ml_frames, ml_outputs
from warehouse.duckdb import connect_read
from warehouse.marts import dispose_engines, open_marts
from warehouse.ml_outputs import MlWriter
from warehouse.settings import warehouse_location

__all__ = ["trained_market"]

MODELS = ("forecast", "price", "segments", "recommender", "fraud")
ML_ASSETS = (
    "demand_forecast",
    "price_model",
    "customer_segments",
    "recommender",
    "fraud_model",
    "ai_insights",
)
CHECKS = (FORECAST_CHECK, PRICE_CHECK, SEGMENTS_CHECK, RECOMMENDER_CHECK, FRAUD_CHECK)
OUTPUT_TABLES = ("demand_forecast", "price_suggestions", "user_segments", "fraud_scores", "insights")


def test_train_job_trains_checks_and_publishes_every_model(trained_market: TrainedMarket) -> None:
    s, summary = trained_market.settings, trained_market.train
    assert summary.success, summary.failures
    assert set(ML_ASSETS) | {"warehouse_snapshot"} <= set(summary.materialized)
    assert {c: summary.checks.get(c) for c in CHECKS} == dict.fromkeys(CHECKS, True)
    # Training time on this store, per model, is on the asset (a float Dagster plots over runs).
    for name in ML_ASSETS:
        meta = summary.materialized[name]
        assert isinstance(meta["train_seconds"], float) and meta["train_seconds"] < 60, (name, meta)
    assert isinstance(summary.materialized["demand_forecast"]["smape"], float)
    assert isinstance(summary.materialized["recommender"]["precision_at_10_blended"], float)
    assert s.models_dir is not None
    with open_marts(s) as reader:  # the published snapshot: readers see the ml tables
        data_version = f"events:{ml_frames.events_high_water_mark(reader)}"
        for table in OUTPUT_TABLES:
            assert ml_outputs.count(reader, table) > 0, table
        runs = {r.name: r for r in ml_outputs.model_runs(reader)}
        for name in MODELS:
            version = registry.latest_version(s.models_dir, name)
            assert version is not None, name
            manifest = registry.read_manifest(s.models_dir, name, version)
            assert manifest is not None and manifest["good"] is True, name
            assert manifest["data_version"] == data_version
            assert manifest["features"] and manifest["metrics"] and manifest["training_window"], name
            start, end = (pd.Timestamp(t) for t in manifest["training_window"])
            assert start < end
            assert registry.load_latest(s.models_dir, name) is not None
            assert runs[name].version == version and runs[name].good
        price_version = registry.latest_version(s.models_dir, "price")
        suggestion = reader.fetch("SELECT product_id FROM ml.price_suggestions LIMIT 1")[0][0]
        found = ml_outputs.price_suggestion(reader, int(suggestion))
        assert found is not None and found.model_version == price_version
        assert found.recommended_price > 0 and found.current_price > 0
        # what a shop owner may read: insights carry the shop they are about
        assert any(i.shop_id is not None for i in ml_outputs.insights(reader))
    # the store's recommendations, written by its own service with their event
    engine = create_engine(s.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT DISTINCT model_version FROM product_recommendations")).all()
            per_user: int = conn.execute(
                text(
                    "SELECT max(c) FROM (SELECT count(*) AS c FROM product_recommendations GROUP BY user_id)"
                )
            ).scalar_one()
            refreshed: int = conn.execute(
                text("SELECT count(*) FROM events WHERE event_type = 'recommendations.refreshed'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert rows == [(registry.latest_version(s.models_dir, "recommender"),)]
    assert per_user == 20 and refreshed == 1


def test_frames_from_the_warehouse_are_the_stores(trained_market: TrainedMarket) -> None:
    """The contract of tests/ml/frames.py: the same rows, columns and values from either side."""
    s = trained_market.untrained
    engine = create_engine(s.database_url)
    try:
        ours = store_frames(engine)
    finally:
        engine.dispose()
    conn = connect_read(warehouse_location(s).path)
    try:
        theirs = ml_frames.read_frames(MlWriter(conn))
    finally:
        conn.close()
    for name in ours.__dataclass_fields__:
        a, b = getattr(ours, name), getattr(theirs, name)
        assert list(a.columns) == list(b.columns), name
        assert len(a) > 0, name
        pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=name)


def test_refresh_job_never_trains(trained_market: TrainedMarket) -> None:
    defs = build_definitions(trained_market.settings, retries=False, echo_dbt_logs=False)
    ml_keys = {k for a in ml_asset_defs for k in a.keys}
    refresh = defs.resolve_job_def("refresh").asset_layer.selected_asset_keys
    train = defs.resolve_job_def("train_models").asset_layer.selected_asset_keys
    assert not refresh & ml_keys
    assert AssetKey("warehouse_snapshot") in refresh
    assert train == ml_keys | {AssetKey("warehouse_snapshot")}
    assert not set(trained_market.refresh.materialized) & set(ML_ASSETS)
    # leaving the ML group out keeps every other asset's checks in the refresh
    assert {x.name for x in (*RAW_SUITES, *MART_SUITES)} <= set(trained_market.refresh.checks)
    schedule = defs.resolve_schedule_def("train_models_hourly")
    assert schedule.cron_schedule == "0 * * * *"
    assert schedule.default_status.value == "STOPPED"


def test_the_datas_now_ignores_the_pipelines_own_events(
    trained_market: TrainedMarket, tmp_path: Path
) -> None:
    """Training writes `recommendations.refreshed` at the wall clock; once a refresh has loaded it, the
    next training must still see the simulated history's end as "now" (else it scores nothing)."""
    home = tmp_path / "market"
    shutil.copytree(trained_market.settings.data_dir.parent, home)
    settings = settings_for(home, home / "store.db")
    assert run_pipeline(settings).success
    with open_marts(settings) as reader:
        ((refreshed, activity),) = reader.fetch(
            """SELECT max(occurred_at) FILTER (WHERE event_type = 'recommendations.refreshed'),
                      max(occurred_at) FILTER (WHERE event_type = 'order.placed')
               FROM raw.events"""
        )
        end = _data_end(reader)
    assert refreshed is not None and pd.Timestamp(refreshed) > pd.Timestamp(activity) + pd.Timedelta(days=30)
    assert end <= pd.Timestamp(activity).tz_convert("UTC") + pd.Timedelta(days=1)


def test_a_model_that_fails_its_check_is_kept_out(
    trained_market: TrainedMarket, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Segments judged against personas shuffled out of all recognition: the new segmentation is saved
    as not good, LATEST and the ml table keep the previous one, and the run still succeeds."""
    home = tmp_path_factory.mktemp("ml-bad-model")
    shutil.copytree(trained_market.settings.data_dir.parent, home, dirs_exist_ok=True)
    s = settings_for(home, home / "store.db")
    assert s.models_dir is not None
    before = registry.latest_version(s.models_dir, "segments")
    truth_path = Path(s.data_dir) / "truth.json"
    truth = json.loads(truth_path.read_text())
    for i, user in enumerate(truth["users"]):
        user["persona"] = f"persona-{i % 2}"  # two made-up personas by parity of the id order
    truth_path.write_text(json.dumps(truth))
    summary = run_pipeline(s, job="train")
    assert summary.success, summary.failures
    assert summary.checks[SEGMENTS_CHECK] is False
    assert summary.materialized["customer_segments"]["good"] is False
    assert registry.latest_version(s.models_dir, "segments") == before
    newest = registry.versions(s.models_dir, "segments")[0]
    assert newest != before and registry.read_manifest(s.models_dir, "segments", newest)["good"] is False  # type: ignore[index]
    with open_marts(s) as reader:
        assert {r[0] for r in reader.fetch("SELECT DISTINCT model_version FROM ml.user_segments")} == {before}
        latest = ml_outputs.model_runs(reader, "segments")[0]
        assert latest.version == newest and latest.good is False
        assert ml_outputs.latest_good_run(reader, "segments").version == before  # type: ignore[union-attr]


@pytest.mark.postgres
def test_train_job_on_a_postgres_warehouse(
    trained_market: TrainedMarket, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = create_pg_database("ml_wh_test")
    try:
        home = tmp_path_factory.mktemp("ml-postgres")
        shutil.copyfile(trained_market.untrained.data_dir.parent / "store.db", home / "store.db")
        (home / "data").mkdir()
        shutil.copyfile(trained_market.untrained.data_dir / "truth.json", home / "data" / "truth.json")
        s = settings_for(home, home / "store.db", warehouse_url=url)
        refresh = run_pipeline(s)
        assert refresh.success, refresh.failures
        summary = run_pipeline(s, job="train")
        assert summary.success, summary.failures
        assert {c: summary.checks.get(c) for c in CHECKS} == dict.fromkeys(CHECKS, True)
        for table in OUTPUT_TABLES:
            assert wh_rows(s, f"SELECT count(*) FROM ml.{table}")[0][0] > 0, table
        money = wh_rows(s, "SELECT current_price, recommended_price FROM ml.price_suggestions LIMIT 1")[0]
        assert all(isinstance(v, Decimal) for v in money)
        with open_marts(s) as reader:
            assert {r.name for r in ml_outputs.model_runs(reader)} >= set(MODELS)
    finally:
        dispose_engines()
        drop_pg_database(url)
