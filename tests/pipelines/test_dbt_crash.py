"""A refresh killed (SIGKILL, its dbt child included) while dbt builds: readers keep the last published
marts whole, and a rerun ends with the marts a clean build makes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api.core.settings import Settings
from pipelines.run import run_pipeline
from pipelines.transform.resources import STDOUT_LOG
from tests.pipelines.simulated import (
    copy_store,
    duckdb_rows,
    mart_stats,
    more_activity,
    settings_for,
    simulate,
)
from warehouse.settings import warehouse_location

REPO = Path(__file__).resolve().parents[2]
# dbt has committed this many models of the run (and has more to go) when the run is killed.
MODELS_DONE_BEFORE_KILL = 8
WAIT_SECONDS = 600
BUILT = re.compile(r"^\d+ of \d+ OK created ")
DONE = re.compile(r"^Finished running \d+ ")

RUN = "import sys\nfrom api.core.settings import get_settings\nfrom pipelines.run import run_pipeline\n"
RUN += "sys.exit(0 if run_pipeline(get_settings()).success else 1)\n"


@pytest.fixture(scope="module")
def simulated_store(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Path:
    return simulate(tmp_path_factory.mktemp("simulated"), sqlite_template)


def _start_refresh(settings: Settings, cwd: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORE_")}
    env.update(
        PYTHONPATH=str(REPO),
        STORE_ENVIRONMENT="test",
        STORE_DATA_DIR=str(settings.data_dir),
        STORE_DATABASE_URL=settings.database_url,
        STORE_WAREHOUSE_PATH=str(warehouse_location(settings).path),
        STORE_JWT_SECRET=settings.secret,
    )
    # A session of its own: the kill takes dbt (a child process) down with it.
    return subprocess.Popen(
        [sys.executable, "-c", RUN],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _models_built(runs: Path, known: set[Path]) -> int:
    """Models dbt reported built in the newest invocation not in `known` (the lines DbtResource keeps)."""
    logs = [p / STDOUT_LOG for p in runs.glob("*") if p not in known and (p / STDOUT_LOG).exists()]
    if not logs:
        return 0
    lines = max(logs, key=lambda p: p.stat().st_mtime).read_text(encoding="utf-8", errors="replace")
    if any(DONE.match(line) for line in lines.splitlines()):
        raise AssertionError("dbt finished before the kill: too little to build for this test")
    return sum(1 for line in lines.splitlines() if BUILT.match(line))


def test_a_refresh_killed_during_dbt_leaves_readers_whole_and_a_rerun_matches_a_clean_build(
    simulated_store: Path, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path / "crash", copy_store(simulated_store, tmp_path / "crash"))
    first = run_pipeline(settings)
    assert first.success, first.failures
    snapshot = warehouse_location(settings).snapshot
    published = mart_stats(duckdb_rows(snapshot))

    more_activity(settings)
    runs = settings.data_dir / "dbt" / "runs"
    known = set(runs.glob("*"))
    process = _start_refresh(settings, tmp_path)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while _models_built(runs, known) < MODELS_DONE_BEFORE_KILL:
            assert process.poll() is None, f"the refresh ended (exit {process.returncode}) before the kill"
            assert time.monotonic() < deadline, "dbt never got going"
            # Readers meanwhile: the last published marts, whole.
            assert mart_stats(duckdb_rows(snapshot)) == published
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert mart_stats(duckdb_rows(snapshot)) == published

    rerun = run_pipeline(settings)
    assert rerun.success, rerun.failures
    recovered = mart_stats(duckdb_rows(snapshot))
    assert recovered != published, "the new activity reached the marts"

    clean = settings_for(tmp_path / "clean", copy_store(tmp_path / "crash" / "store.db", tmp_path / "clean"))
    built = run_pipeline(clean)
    assert built.success, built.failures
    assert recovered == mart_stats(duckdb_rows(warehouse_location(clean).snapshot))
