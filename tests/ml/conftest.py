"""One simulated marketplace for every ML test: the real simulator drives the real API into a SQLite
store once per session; the models read it back with SQL (tests/ml/frames.py) and are scored against
the truth file the simulator wrote.

The profile is the tests' own: fewer users and products than `small`, busier, and six weeks long, so
a forecast has four weeks to learn from and two held out, and each planted persona leaves enough
behaviour to be found again.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from api.core.settings import Environment, Settings
from simulator.engine import run_backfill
from simulator.profiles import Profile
from tests.conftest import TEST_SECRET
from tests.ml.frames import StoreFrames, read_frames

ML_PROFILE = Profile(
    "ml-test",
    users=100,
    shops=8,
    products=800,
    days=42,
    categories=12,
    activity=0.45,
    seller_activity=0.5,
    fraud_share=0.05,
    purchase=1.0,
)
START = date(2026, 1, 5)  # a Monday
SEED = 11


@dataclass
class Market:
    frames: StoreFrames
    truth: dict[str, Any]
    engine: Engine
    database_url: str
    start: pd.Timestamp  # first simulated day, UTC midnight
    end: pd.Timestamp  # the moment after the last simulated day


@pytest.fixture(scope="session")
def market(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Market]:
    tmp = tmp_path_factory.mktemp("ml-market")
    shutil.copyfile(sqlite_template, tmp / "store.db")
    settings = Settings(
        environment=Environment.test,
        database_url=f"sqlite:///{tmp / 'store.db'}",
        jwt_secret=TEST_SECRET,
        auto_migrate=False,
        data_dir=tmp / "data",
        redis_url=None,
        _env_file=None,
    )
    result = run_backfill(settings, ML_PROFILE, seed=SEED, start=START)
    truth = json.loads(result.truth_path.read_text())
    engine = create_engine(settings.database_url)
    start = pd.Timestamp(START, tz="UTC")
    yield Market(
        read_frames(engine),
        truth,
        engine,
        settings.database_url,
        start,
        start + pd.Timedelta(days=ML_PROFILE.days),
    )
    engine.dispose()
