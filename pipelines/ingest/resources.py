"""The ingest's resources, built from the platform's one Settings object."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy import Engine

from api.core.settings import Settings
from pipelines.ingest.extract import create_source_engine
from pipelines.ingest.load import BATCH_ROWS, LOOKBACK_IDS
from warehouse.duckdb import WRITE_WAIT_SECONDS, connect_write, publish_snapshot
from warehouse.settings import WarehouseLocation, warehouse_location


class StoreResource(ConfigurableResource["StoreResource"]):
    """The store database the loads read (SQLite or PostgreSQL)."""

    database_url: str = Field(description="SQLAlchemy URL of the store (STORE_DATABASE_URL).")
    batch_rows: int = Field(default=BATCH_ROWS, ge=1, description="Rows per Arrow batch read.")
    lookback_ids: int = Field(
        default=LOOKBACK_IDS,
        ge=0,
        description="Event ids below the high-water mark re-read each load, for late-committing writers.",
    )

    @contextmanager
    def engine(self) -> Iterator[Engine]:
        engine = create_source_engine(self.database_url)
        try:
            yield engine
        finally:
            engine.dispose()


class WarehouseResource(ConfigurableResource["WarehouseResource"]):
    """The DuckDB warehouse file the pipelines write, and the read snapshot they publish."""

    path: str = Field(description="DuckDB file (STORE_WAREHOUSE_PATH, default <data_dir>/warehouse.duckdb).")
    write_wait_seconds: float = Field(default=WRITE_WAIT_SECONDS, ge=0)

    @property
    def location(self) -> WarehouseLocation:
        return WarehouseLocation(Path(self.path))

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection; waits while another run holds the file."""
        conn = connect_write(self.location.path, wait_seconds=self.write_wait_seconds)
        try:
            yield conn
        finally:
            conn.close()

    def publish(self, conn: duckdb.DuckDBPyConnection) -> Path:
        return publish_snapshot(conn, self.location)


def build_resources(settings: Settings) -> dict[str, object]:
    return {
        "store": StoreResource(database_url=settings.database_url),
        "warehouse": WarehouseResource(path=str(warehouse_location(settings).path)),
    }
