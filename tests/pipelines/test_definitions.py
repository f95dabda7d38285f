"""What `dagster dev -m pipelines.definitions` shows: the assets, their checks, the job and schedule."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetKey, DefaultScheduleStatus, Definitions

from api.core.settings import Environment, Settings, get_settings
from pipelines.definitions import build_definitions, defs
from pipelines.ingest.tables import SNAPSHOT_TABLES
from tests.conftest import TEST_SECRET


def test_the_definitions_load_with_resources_from_settings(tmp_path: Path) -> None:
    settings = Settings(
        environment=Environment.test,
        data_dir=tmp_path / "data",
        database_url="postgresql+psycopg://u@db:5432/store",
        warehouse_path=tmp_path / "wh" / "w.duckdb",
        jwt_secret=TEST_SECRET,
        _env_file=None,
    )
    defs = build_definitions(settings)
    Definitions.validate_loadable(defs)

    graph = defs.resolve_asset_graph()
    expected = {"raw_events", *(f"raw_{t}" for t in SNAPSHOT_TABLES), "warehouse_snapshot"}
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == expected
    assert {c.name for c in graph.asset_check_keys} == {
        "raw_events_unique_event_id",
        "raw_events_match_store_count",
    }
    # The snapshot is published only after every load.
    assert graph.get(AssetKey("warehouse_snapshot")).parent_keys == {
        AssetKey(k) for k in expected - {"warehouse_snapshot"}
    }

    resources = defs.resources or {}
    assert resources["store"].database_url == settings.database_url
    assert resources["warehouse"].path == str(tmp_path / "wh" / "w.duckdb")

    schedule = defs.resolve_schedule_def("ingest_every_15_minutes")
    assert schedule.cron_schedule == "*/15 * * * *"
    assert schedule.default_status == DefaultScheduleStatus.STOPPED
    assert schedule.job_name == "ingest"
    # Scheduled runs retry a failed load with backoff (a lock held past the wait, a store restart).
    policy = defs.resolve_job_def("ingest").op_retry_policy
    assert policy is not None and policy.max_retries == 3


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
    loaded = defs()
    resources = loaded.resources or {}
    assert resources["store"].database_url == "sqlite:////srv/store.db"
    assert resources["warehouse"].path == str(tmp_path / "wh" / "w.duckdb")


def test_importing_the_pipelines_reads_no_settings_and_writes_nothing(tmp_path: Path) -> None:
    """Tests and the command line import these modules from any directory: only `dagster dev` loading
    `defs` may read the environment (and create data/ for a development secret)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORE_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    done = subprocess.run(
        [sys.executable, "-c", "import pipelines.definitions, pipelines.run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []
