from __future__ import annotations

import pytest

from api.core.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared test settings with this test's own warehouse file, whatever STORE_WAREHOUSE_PATH the
    environment holds: parallel tests must never write one DuckDB file."""
    return settings.model_copy(update={"warehouse_path": settings.data_dir / "warehouse.duckdb"})
