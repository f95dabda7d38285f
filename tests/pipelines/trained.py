"""A small simulated store loaded by the real refresh into a DuckDB warehouse, then trained by the real
train job: shared by the ML pipeline tests and the /api/ai tests (import `trained_market` into a test
module to use it). Built once per session; `untrained` is a copy of the same directory taken after the
refresh and before any training run."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from api.core.settings import Settings
from pipelines.run import PipelineSummary, run_pipeline
from simulator.engine import run_backfill
from simulator.profiles import Profile
from tests.pipelines.simulated import settings_for

# Four weeks: the forecast holds out two and still has two to learn from; busy enough that each model
# has something to beat its baseline with.
ML_PIPELINE_PROFILE = Profile(
    "ml-pipeline",
    users=60,
    shops=6,
    products=200,
    days=28,
    categories=8,
    activity=0.45,
    seller_activity=0.5,
    fraud_share=0.05,
    purchase=1.0,
)
START = date(2026, 1, 5)
SEED = 7


@dataclass(frozen=True)
class TrainedMarket:
    settings: Settings  # the store, warehouse and model registry after the train job
    untrained: Settings  # the same store and warehouse before it (no ml schema, no models)
    refresh: PipelineSummary
    train: PipelineSummary
    train_seconds: float


def _settings(directory: Path) -> Settings:
    return settings_for(directory, directory / "store.db")


# Test modules import the fixture, so each registers its own copy: the first build is kept here for
# the others of the session (the directories live as long as the session's temp dirs).
_BUILT: dict[int, TrainedMarket] = {}


@pytest.fixture(scope="session")
def trained_market(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> TrainedMarket:
    key = id(tmp_path_factory)
    if key not in _BUILT:
        _BUILT[key] = _build(tmp_path_factory, sqlite_template)
    return _BUILT[key]


def _build(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> TrainedMarket:
    home = tmp_path_factory.mktemp("ml-pipeline")
    shutil.copyfile(sqlite_template, home / "store.db")
    settings = _settings(home)
    run_backfill(settings, ML_PIPELINE_PROFILE, seed=SEED, start=START)
    refresh = run_pipeline(settings)
    assert refresh.success, refresh.failures
    untrained_home = tmp_path_factory.mktemp("ml-untrained")
    shutil.copytree(home, untrained_home, dirs_exist_ok=True)
    began = time.perf_counter()
    train = run_pipeline(settings, job="train")
    return TrainedMarket(settings, _settings(untrained_home), refresh, train, time.perf_counter() - began)


def private_copy(settings: Settings, directory: Path) -> Settings:
    """A market's (`trained_market.settings` or `.untrained`) store, warehouse and models copied into
    `directory`: for a test that writes (signs in through the API, registers, loads again), so the
    shared market stays as built for the others."""
    shutil.copytree(settings.data_dir.parent, directory)
    return _settings(directory)
