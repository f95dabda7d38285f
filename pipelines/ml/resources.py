"""The ML assets' resources: where models are saved and what they are trained with, and the store the
recommender writes its rows to."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from api.core.settings import Settings
from api.db.engine import Store, open_store
from ml.forecast import ForecastConfig
from pipelines.ingest.resources import WarehouseResource
from warehouse.ml_outputs import MlWriter, writer_for

TRUTH_FILE = "truth.json"


class MlResource(ConfigurableResource["MlResource"]):
    """The model registry and the training budget."""

    models_dir: str = Field(description="The model registry (STORE_MODELS_DIR, default <data_dir>/models).")
    data_dir: str = Field(description="The data dir: the simulator's truth.json, when present, is read here.")
    forecast_workers: int = Field(default=2, ge=1, description="Processes fitting prophet series.")
    series_timeout_seconds: float = Field(
        default=20.0, gt=0, description="Longest one prophet fit may take before the fallback replaces it."
    )
    forecast_horizon_days: int = Field(default=30, ge=1)
    forecast_backtest_days: int = Field(default=14, ge=1)
    min_persona_ari: float = Field(
        default=0.3, description="Segments must agree at least this well with the planted personas."
    )
    recommend_eval_users: int = Field(
        default=500, ge=1, description="Users scored in the recommender's offline evaluation (time)."
    )

    @property
    def registry(self) -> Path:
        return Path(self.models_dir)

    def forecast_config(self) -> ForecastConfig:
        return ForecastConfig(
            horizon_days=self.forecast_horizon_days,
            backtest_days=self.forecast_backtest_days,
            workers=self.forecast_workers,
            series_timeout_seconds=self.series_timeout_seconds,
        )

    def truth(self) -> dict[str, Any] | None:
        """The simulator's truth file (planted personas, promotions, fraud), if this data dir has one."""
        path = Path(self.data_dir) / TRUTH_FILE
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None


class RecommendationsStore(ConfigurableResource["RecommendationsStore"]):
    """The store database, where `product_recommendations` lives."""

    database_url: str = Field(description="SQLAlchemy URL of the store (STORE_DATABASE_URL).")
    redis_url: str | None = Field(
        default=None, description="The API's Redis (STORE_REDIS_URL): a refresh invalidates its cache."
    )

    @contextmanager
    def store(self) -> Iterator[Store]:
        with open_store(self.database_url, redis_url=self.redis_url) as store:
            yield store


@contextmanager
def ml_writer(warehouse: WarehouseResource) -> Iterator[MlWriter]:
    """A read-write connection to the warehouse with the ml schema in place. Held briefly: reading the
    inputs, then writing the outputs; never across a training (DuckDB admits one writer)."""
    if warehouse.is_postgres:
        with warehouse.connect_postgres() as pg, writer_for(pg) as writer:
            yield writer
        return
    with warehouse.connect() as duck, writer_for(duck) as writer:
        yield writer


def build_resources(settings: Settings) -> dict[str, object]:
    assert settings.models_dir is not None  # Settings fills the default in its validator
    return {
        "ml": MlResource(
            models_dir=str(settings.models_dir.resolve()), data_dir=str(settings.data_dir.resolve())
        ),
        "recommendations_store": RecommendationsStore(
            database_url=settings.database_url, redis_url=settings.redis_url
        ),
    }
