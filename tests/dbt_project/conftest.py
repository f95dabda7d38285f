"""A small simulated store (the real simulator through the real API), its warehouse raw layer loaded by
the real ingest, and dbt run against it on DuckDB and on PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from sqlalchemy.engine import make_url

from api.core.settings import Environment, Settings
from pipelines.ingest.tables import SNAPSHOT_TABLES
from pipelines.ingest.targets import open_target
from simulator.engine import run_backfill
from simulator.profiles import get_profile
from tests.conftest import PG_ADMIN_URL, TEST_SECRET, service_missing

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"
START = date(2026, 3, 2)
DAYS = 6
SEED = 5
TARGETS = ["duckdb", "postgres"]


def store_settings(db: Path, data_dir: Path) -> Settings:
    return Settings(
        environment=Environment.test,
        database_url=f"sqlite:///{db}",
        jwt_secret=TEST_SECRET,
        auto_migrate=False,
        session_sweep_seconds=0,
        delivery_poll_seconds=0,
        call_sweep_seconds=0,
        search_event_flush_seconds=0,
        data_dir=data_dir,
        redis_url=None,
        _env_file=None,
    )


@pytest.fixture(scope="session")
def simulated_store(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Path:
    """A SQLite store after a backfill of the `small` profile (the real simulator through the real API)."""
    root = tmp_path_factory.mktemp("dbt_sim")
    store = root / "store.db"
    shutil.copyfile(sqlite_template, store)
    run_backfill(
        store_settings(store, root / "data"), get_profile("small"), seed=SEED, days=DAYS, start=START
    )
    return store


@dataclass
class DbtResult:
    ok: bool
    output: str
    seconds: float


@dataclass
class Warehouse:
    """One dbt target (DuckDB file or PostgreSQL database) filled by the real ingest from this test's
    copy of the simulated store."""

    target: str
    settings: Settings  # the ingest's: the store's URL and the warehouse the target names
    work: Path
    env: dict[str, str] = field(default_factory=dict)

    def dbt(self, *args: str) -> DbtResult:
        """Runs the dbt CLI in a subprocess (dbt-duckdb keeps its file open in the calling process)."""
        cmd = [
            str(Path(sys.executable).with_name("dbt")),
            *args,
            "--project-dir",
            str(DBT_PROJECT),
            "--profiles-dir",
            str(DBT_PROJECT),
            "--target",
            self.target,
            "--target-path",
            str(self.work / "target"),
            "--log-path",
            str(self.work / "logs"),
        ]
        started = time.perf_counter()
        proc = subprocess.run(
            cmd, env={**os.environ, **self.env}, capture_output=True, text=True, timeout=600, check=False
        )
        return DbtResult(proc.returncode == 0, proc.stdout + proc.stderr, time.perf_counter() - started)

    def build(self, *args: str) -> DbtResult:
        result = self.dbt("build", *args)
        assert result.ok, result.output[-5000:]
        return result

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.settings.warehouse_url is not None:
            with psycopg.connect(self.settings.warehouse_url) as pg:
                return [tuple(r) for r in pg.execute(sql).fetchall()]
        assert self.settings.warehouse_path is not None
        duck = duckdb.connect(str(self.settings.warehouse_path), read_only=True)
        try:
            duck.execute("SET TimeZone = 'UTC'")
            return [tuple(r) for r in duck.execute(sql).fetchall()]
        finally:
            duck.close()

    def load(self, now: datetime) -> int:
        """One ingest run as the pipeline makes it: new events appended, every snapshot replaced."""
        with open_target(self.settings) as target:
            loaded = target.load_events(now=now).rows_loaded
            for name in SNAPSHOT_TABLES:
                target.load_snapshot(name, now=now)
            target.publish()
        return loaded


@pytest.fixture
def store_db(tmp_path: Path, simulated_store: Path) -> Path:
    """This test's own copy of the simulated store."""
    db = tmp_path / "store.db"
    shutil.copyfile(simulated_store, db)
    return db


@pytest.fixture(params=TARGETS)
def warehouse(request: pytest.FixtureRequest, tmp_path: Path, store_db: Path) -> Iterator[Warehouse]:
    """A warehouse on the target loaded once from the simulated store; PostgreSQL in a throwaway
    database of its own."""
    settings = store_settings(store_db, tmp_path / "data")
    if request.param == "duckdb":
        path = tmp_path / "warehouse.duckdb"
        wh = Warehouse("duckdb", settings.model_copy(update={"warehouse_path": path}), tmp_path)
        wh.env = {"STORE_WAREHOUSE_PATH": str(path)}
        wh.load(datetime.now(UTC))
        yield wh
        return
    admin_url = make_url(PG_ADMIN_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"dbt_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        service_missing("PostgreSQL", str(exc).splitlines()[0])
    url = make_url(admin_url).set(database=name)
    wh = Warehouse(
        "postgres",
        settings.model_copy(update={"warehouse_url": url.render_as_string(hide_password=False)}),
        tmp_path,
    )
    wh.env = {
        "STORE_WAREHOUSE_PG_HOST": url.host or "127.0.0.1",
        "STORE_WAREHOUSE_PG_PORT": str(url.port or 5432),
        "STORE_WAREHOUSE_PG_USER": url.username or "postgres",
        "STORE_WAREHOUSE_PG_PASSWORD": url.password or "",
        "STORE_WAREHOUSE_PG_DBNAME": name,
    }
    try:
        wh.load(datetime.now(UTC))
        yield wh
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
