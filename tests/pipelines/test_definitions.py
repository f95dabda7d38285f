"""What `dagster dev -m pipelines.definitions` shows: the ingest, dbt and publish assets, their checks, the
jobs, the schedule and the sensors, with resources from the store's settings."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dagster import AssetKey, DefaultScheduleStatus, DefaultSensorStatus, Definitions

from api.core.settings import Environment, Settings, get_settings
from pipelines.definitions import build_definitions, defs
from pipelines.ingest.tables import SNAPSHOT_TABLES
from pipelines.quality.suites import MART_SUITES, RAW_SUITES
from pipelines.run import ROOT_DAGSTER_YAML
from pipelines.transform import project
from tests.conftest import TEST_SECRET

REPO = Path(__file__).resolve().parents[2]
RAW_ASSETS = {"raw_events", *(f"raw_{t}" for t in SNAPSHOT_TABLES)}
CONTRACT_MARTS = {"marts/mart_shop_daily", "marts/mart_platform_daily", "marts/mart_revenue_daily"}
# pipelines/ml: trained by the train_models job (tests/pipelines/test_ml.py).
ML_ASSETS = {
    "demand_forecast",
    "price_model",
    "customer_segments",
    "recommender",
    "fraud_model",
    "ai_insights",
}


def _settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        environment=Environment.test,
        data_dir=tmp_path / "data",
        database_url="postgresql+psycopg://u@db:5432/store",
        warehouse_path=tmp_path / "wh" / "w.duckdb",
        jwt_secret=TEST_SECRET,
        _env_file=None,
        **extra,
    )


def test_the_definitions_load_with_every_layer_and_resources_from_settings(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    loaded = build_definitions(settings)
    Definitions.validate_loadable(loaded)
    graph = loaded.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}

    # Every dbt model is an asset named <layer>/<model>, grouped by its layer.
    models = {k for k in keys if "/" in k}
    assert models >= CONTRACT_MARTS
    assert {k.split("/")[0] for k in models} == {"staging", "intermediate", "marts"}
    for key in models:
        assert graph.get(AssetKey.from_user_string(key)).group_name == key.split("/")[0]
    assert keys == RAW_ASSETS | models | ML_ASSETS | {"warehouse_snapshot"}

    # The dbt sources are the ingest's assets: staging reads what the loads write.
    assert AssetKey("raw_events") in graph.get(AssetKey(["staging", "stg_events"])).parent_keys
    assert AssetKey("raw_orders") in graph.get(AssetKey(["staging", "stg_orders"])).parent_keys
    # The snapshot is published only after every load and every model.
    assert graph.get(AssetKey("warehouse_snapshot")).parent_keys == {
        AssetKey.from_user_string(k) for k in keys - {"warehouse_snapshot"}
    }

    checks = graph.asset_check_keys
    names = {c.name for c in checks}
    assert {s.name for s in (*RAW_SUITES, *MART_SUITES)} | {
        "raw_events_unique_event_id",
        "raw_events_match_store_count",
    } <= names
    # dbt's tests are checks of the models they test; error-severity ones block what is downstream.
    dbt_checks = [c for c in checks if "/" in c.asset_key.to_user_string()]
    assert {c.asset_key.to_user_string() for c in dbt_checks} >= CONTRACT_MARTS
    assert any(graph.get_check_spec(c).blocking for c in dbt_checks)
    assert not all(graph.get_check_spec(c).blocking for c in dbt_checks)  # warn-severity tests
    (raw_products_valid,) = [c for c in checks if c.name == "raw_products_valid"]
    assert graph.get_check_spec(raw_products_valid).blocking

    # Freshness: raw_events and every mart carry a policy the daemon evaluates.
    assert graph.get(AssetKey("raw_events")).freshness_policy is not None
    for key in models:
        node = graph.get(AssetKey.from_user_string(key))
        assert (node.freshness_policy is not None) == key.startswith("marts/")

    resources = loaded.resources or {}
    assert resources["store"].database_url == settings.database_url
    assert resources["warehouse"].path == str(tmp_path / "wh" / "w.duckdb")
    assert resources["warehouse"].url is None
    assert resources["dbt"].target == "duckdb"
    assert resources["admin_notifier"].database_url == settings.database_url

    schedule = loaded.resolve_schedule_def("refresh_every_15_minutes")
    assert schedule.cron_schedule == "*/15 * * * *"
    assert schedule.default_status == DefaultScheduleStatus.STOPPED
    assert schedule.job_name == "refresh"
    sensors = {s.name: s for s in loaded.sensors or []}
    assert sensors["refresh_on_new_events"].minimum_interval_seconds == 60
    assert sensors["refresh_on_new_events"].default_status == DefaultSensorStatus.RUNNING
    assert sensors["notify_admins_of_failed_runs"].default_status == DefaultSensorStatus.RUNNING
    # Scheduled runs retry a failed load with exponential backoff (a lock held past the wait).
    for job in ("ingest", "refresh"):
        policy = loaded.resolve_job_def(job).op_retry_policy
        assert policy is not None and policy.max_retries == 3 and policy.backoff is not None
    assert loaded.resolve_job_def("refresh").tags["warehouse/writer"] == "true"


def test_a_postgres_warehouse_switches_the_loads_and_dbt_to_it(tmp_path: Path) -> None:
    url = "postgresql://wh_user:s3cret@wh-host:6432/analytics"
    resources = build_definitions(_settings(tmp_path, warehouse_url=url)).resources or {}
    assert resources["warehouse"].url == url
    dbt = resources["dbt"]
    assert dbt.target == "postgres"
    assert project.dbt_env(dbt.warehouse_path, dbt.warehouse_url) == {
        "STORE_WAREHOUSE_PATH": str(tmp_path / "wh" / "w.duckdb"),
        "STORE_DBT_TARGET": "postgres",
        "STORE_WAREHOUSE_PG_HOST": "wh-host",
        "STORE_WAREHOUSE_PG_PORT": "6432",
        "STORE_WAREHOUSE_PG_USER": "wh_user",
        "STORE_WAREHOUSE_PG_PASSWORD": "s3cret",
        "STORE_WAREHOUSE_PG_DBNAME": "analytics",
    }


def test_the_manifest_is_parsed_once_per_change_of_the_project(tmp_path: Path) -> None:
    """A clean clone has no manifest; an edited model must not leave a stale one behind."""
    copy = tmp_path / "dbt_project"
    shutil.copytree(project.DBT_PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs"))
    env = project.dbt_env(str(tmp_path / "w.duckdb"), None)
    first = project.prepare_manifest("duckdb", env, project_dir=copy)
    assert first.exists() and first.is_relative_to(copy / "target")
    assert project.prepare_manifest("duckdb", env, project_dir=copy) == first

    model = copy / "models" / "marts" / "mart_h3_probe.sql"
    model.write_text("select 1 as one\n")
    second = project.prepare_manifest("duckdb", env, project_dir=copy)
    assert second != first
    assert "model.cryptostore.mart_h3_probe" in second.read_text()
    assert "model.cryptostore.mart_h3_probe" not in first.read_text()


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_dagster_loads_the_definitions_from_the_store_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env file
    monkeypatch.setenv("STORE_ENVIRONMENT", "test")
    monkeypatch.setenv("STORE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STORE_DATABASE_URL", "sqlite:////srv/store.db")
    monkeypatch.setenv("STORE_WAREHOUSE_PATH", str(tmp_path / "wh" / "w.duckdb"))
    monkeypatch.delenv("STORE_WAREHOUSE_URL", raising=False)
    loaded = defs()
    resources = loaded.resources or {}
    assert resources["store"].database_url == "sqlite:////srv/store.db"
    assert resources["warehouse"].path == str(tmp_path / "wh" / "w.duckdb")
    assert resources["dbt"].warehouse_path == str(tmp_path / "wh" / "w.duckdb")


def test_importing_the_pipelines_reads_no_settings_and_writes_nothing(tmp_path: Path) -> None:
    """Tests and the command line import these modules from any directory: only `dagster dev` loading
    `defs` may read the environment (and create data/ for a development secret)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORE_")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", "import pipelines.definitions, pipelines.run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []


LOCATIONS = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
ASSETS = "{ assetNodes { assetKey { path } } }"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _graphql(port: int, query: str) -> dict[str, Any]:
    resp = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=30)
    resp.raise_for_status()
    data: dict[str, Any] = resp.json()["data"]
    return data


def test_dagster_dev_serves_the_definitions_with_the_root_instance_config(tmp_path: Path) -> None:
    """`dagster dev -m pipelines.definitions` with DAGSTER_HOME unset, in a directory holding the
    repository's own dagster.yaml (so its relative data/dagster paths land in the temporary directory),
    loads the code location without errors and shows the dbt assets."""
    shutil.copyfile(ROOT_DAGSTER_YAML, tmp_path / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORE_", "DAGSTER_"))}
    env.update(
        PYTHONPATH=str(REPO),
        STORE_ENVIRONMENT="test",
        STORE_DATA_DIR=str(tmp_path / "store"),
        STORE_DATABASE_URL=f"sqlite:///{tmp_path / 'store' / 'store.db'}",
    )
    port = _free_port()
    dagster = Path(sys.executable).parent / "dagster"
    log = (tmp_path / "dagster-dev.log").open("wb")
    process = subprocess.Popen(
        [str(dagster), "dev", "-m", "pipelines.definitions", "-h", "127.0.0.1", "-p", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        entries: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "dagster-dev.log").read_text()[-3000:]
            try:
                entries = _graphql(port, LOCATIONS)["workspaceOrError"]["locationEntries"]
            except (httpx.HTTPError, KeyError, TypeError):
                entries = []
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                break
            time.sleep(1)
        assert entries, "dagster dev never served its workspace"
        (entry,) = entries
        assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
        keys = {"/".join(n["assetKey"]["path"]) for n in _graphql(port, ASSETS)["assetNodes"]}
        assert CONTRACT_MARTS | RAW_ASSETS | {"warehouse_snapshot"} <= keys
        # The instance lives where the root dagster.yaml says, relative to where dagster dev started.
        assert (tmp_path / "data" / "dagster" / "storage").is_dir()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
