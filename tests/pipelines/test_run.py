"""`run_pipeline`, the entry point of the command line: progress as it happens, failures in the summary;
and the Dagster instance of a data dir, shared with the UI."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import AssetKey, DagsterInstance, DagsterRunStatus
from dagster._core.instance.ref import InstanceRef
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.core.settings import Environment, Settings
from pipelines.ingest.tables import SNAPSHOT_TABLES
from pipelines.run import ROOT_DAGSTER_YAML, Progress, dagster_home, instance_for, run_pipeline
from tests.conftest import PG_ADMIN_URL, TEST_SECRET, service_missing


def test_a_failed_load_is_reported_not_raised_and_publishes_nothing(tmp_path: Path) -> None:
    settings = Settings(
        environment=Environment.test,
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'not_migrated.db'}",
        warehouse_path=tmp_path / "data" / "warehouse.duckdb",
        jwt_secret=TEST_SECRET,
        _env_file=None,
    )
    progress: list[Progress] = []
    summary = run_pipeline(settings, on_progress=progress.append)

    assert summary.success is False
    assert summary.seconds < 30, "no retries with backoff when run from the command line"
    failed = {f.split(":")[0]: f for f in summary.failures}
    assert set(failed) == {"raw_events", *(f"raw_{t}" for t in SNAPSHOT_TABLES)}
    assert "not_migrated" in failed["raw_events"] or "no such table" in failed["raw_events"]
    # Nothing downstream of a failed load runs: no model, no publish.
    assert summary.materialized == {}
    assert not (tmp_path / "data" / "warehouse.read.duckdb").exists()
    assert {p.step for p in progress if p.kind == "failed"} == set(failed)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_run_recorded_through_instance_for_is_seen_by_a_fresh_instance_of_its_home(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # nothing may land in, or depend on, the working directory

    with instance_for(settings) as instance:
        summary = run_pipeline(settings, instance=instance, job="ingest")
    assert summary.success, summary.failures

    home = dagster_home(settings)
    assert home == (settings.data_dir / "dagster").resolve()
    # What `dagster dev` started with DAGSTER_HOME=<home> opens.
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as fresh:
        runs = fresh.get_runs()
        assert [(r.run_id, r.job_name, r.status) for r in runs] == [
            (summary.run_id, "ingest", DagsterRunStatus.SUCCESS)
        ]
        materialized = fresh.get_latest_materialization_event(AssetKey("raw_events"))
        assert materialized is not None and materialized.run_id == summary.run_id
    assert list(elsewhere.iterdir()) == []


def test_the_home_config_is_the_root_one_with_absolute_paths_under_home(tmp_path: Path) -> None:
    settings = Settings(
        environment=Environment.test, data_dir=tmp_path / "data", jwt_secret=TEST_SECRET, _env_file=None
    )
    home = dagster_home(settings)
    written = home / "dagster.yaml"
    config = yaml.safe_load(written.read_text())

    def base_dirs(value: Any) -> list[str]:
        if isinstance(value, dict):
            found: list[str] = []
            for key, item in value.items():
                found += [item] if key == "base_dir" else base_dirs(item)
            return found
        if isinstance(value, list):
            return [s for v in value for s in base_dirs(v)]
        return []

    paths = base_dirs(config)
    assert paths and all(Path(p).is_absolute() and Path(p).is_relative_to(home) for p in paths), paths
    assert config["storage"]["sqlite"]["base_dir"] == str(home / "storage")
    assert config["compute_logs"]["config"]["base_dir"] == str(home / "compute_logs")
    assert config["telemetry"] == {"enabled": False}
    # Apart from where the directories are, the same instance as the root dagster.yaml describes.
    root = yaml.safe_load(ROOT_DAGSTER_YAML.read_text())
    assert yaml.safe_dump(config).replace(str(home), "data/dagster") == yaml.safe_dump(root)

    # Rewritten only when its content would change (a running `dagster dev` reads it).
    before = written.stat().st_mtime_ns
    written_inode = written.stat().st_ino
    assert dagster_home(settings) == home
    assert (written.stat().st_mtime_ns, written.stat().st_ino) == (before, written_inode)
    written.write_text("telemetry:\n  enabled: true\n")
    dagster_home(settings)
    assert yaml.safe_load(written.read_text()) == config


PRODUCTION_YAML = ROOT_DAGSTER_YAML.with_name("dagster.production.yaml")


@pytest.fixture
def dagster_pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for Dagster's own storage, as SQLAlchemy + psycopg2 name it."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"dagster_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        service_missing("PostgreSQL", str(exc).splitlines()[0])
    yield (
        make_url(PG_ADMIN_URL)
        .set(drivername="postgresql+psycopg2", database=name)
        .render_as_string(hide_password=False)
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_production_instance_keeps_runs_in_postgres(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dagster_pg_url: str
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PRODUCTION_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_pg_url)
    monkeypatch.setenv("DAGSTER_COMPUTE_LOG_DIR", str(tmp_path / "compute_logs"))
    monkeypatch.setenv("DAGSTER_ARTIFACT_DIR", str(tmp_path / "artifacts"))

    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        summary = run_pipeline(settings, instance=instance, job="ingest")
    assert summary.success, summary.failures

    # Another process (the webserver, the daemon) opening the same configuration sees the run.
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as fresh:
        assert [(r.run_id, r.status) for r in fresh.get_runs()] == [
            (summary.run_id, DagsterRunStatus.SUCCESS)
        ]
    engine = create_engine(dagster_pg_url)
    try:
        with engine.connect() as conn:
            (stored,) = conn.execute(text("SELECT run_id FROM runs")).one()
    finally:
        engine.dispose()
    assert stored == summary.run_id
