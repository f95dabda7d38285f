"""The ingest's resources, built from the platform's one Settings object."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import psycopg
from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from api.core.settings import Settings
from pipelines.ingest.extract import create_source_engine, read_snapshot, scalar
from pipelines.ingest.load import BATCH_ROWS, LOOKBACK_IDS
from pipelines.ingest.targets import DuckDBTarget, PostgresTarget
from warehouse.duckdb import WRITE_WAIT_SECONDS, connect_write
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

    def max_event_id(self) -> int:
        """The newest event's id (0 for an empty store): what the new-events sensor compares."""
        with self.engine() as engine, read_snapshot(engine) as conn:
            return int(scalar(conn, "SELECT coalesce(max(id), 0) FROM events"))


def libpq_url(url: str) -> str:
    """`postgresql+psycopg://...` (SQLAlchemy's spelling) as the plain URL libpq and psycopg take."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"the warehouse URL must be a PostgreSQL URL, not {parsed.get_backend_name()}")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class WarehouseResource(ConfigurableResource["WarehouseResource"]):
    """The warehouse the pipelines write: the DuckDB file at `path` (and the read snapshot published
    next to it), or the PostgreSQL database at `url` when one is set."""

    path: str = Field(description="DuckDB file (STORE_WAREHOUSE_PATH, default <data_dir>/warehouse.duckdb).")
    url: str | None = Field(
        default=None, description="PostgreSQL warehouse (STORE_WAREHOUSE_URL); unset: the DuckDB file."
    )
    write_wait_seconds: float = Field(default=WRITE_WAIT_SECONDS, ge=0)

    @property
    def is_postgres(self) -> bool:
        return self.url is not None

    @property
    def location(self) -> WarehouseLocation:
        return WarehouseLocation(Path(self.path))

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection to the DuckDB file; waits while another run holds it."""
        conn = connect_write(self.location.path, wait_seconds=self.write_wait_seconds)
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def connect_postgres(self) -> Iterator[psycopg.Connection[Any]]:
        if self.url is None:
            raise RuntimeError("no PostgreSQL warehouse configured (STORE_WAREHOUSE_URL)")
        with psycopg.connect(libpq_url(self.url), autocommit=True) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            yield conn

    @contextmanager
    def target(self, store_url: str) -> Iterator[DuckDBTarget | PostgresTarget]:
        """The loader's view of this warehouse (`pipelines.ingest.targets`), reading `store_url`."""
        target: DuckDBTarget | PostgresTarget = (
            PostgresTarget(self.url, store_url)
            if self.url is not None
            else DuckDBTarget(self.location, store_url, write_wait_seconds=self.write_wait_seconds)
        )
        with target:
            yield target

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one query, on whichever target is configured (`?` placeholders on DuckDB,
        `%s` on PostgreSQL: keep parameterless SQL portable)."""
        if self.is_postgres:
            with self.connect_postgres() as pg:
                return [tuple(r) for r in pg.execute(sql.encode(), params).fetchall()]
        with self.connect() as conn:
            return [tuple(r) for r in conn.execute(sql, list(params)).fetchall()]

    def frame(self, sql: str) -> pd.DataFrame:
        """The result of `sql` as a DataFrame with exact values: DECIMAL columns hold Python Decimals
        (DuckDB's own `.df()` would turn them into floats)."""
        if self.is_postgres:
            with self.connect_postgres() as pg, pg.cursor() as cur:
                cur.execute(sql.encode())
                columns = [d.name for d in cur.description or ()]
                return pd.DataFrame(cur.fetchall(), columns=columns)
        with self.connect() as conn:
            table = conn.sql(sql).to_arrow_table()
        return table.to_pandas()

    def high_water_mark(self) -> int | None:
        """The highest store event id loaded, as readers see it (the published snapshot on DuckDB:
        the writer's file may be locked by a run). None when nothing was ever published."""
        sql = "SELECT high_water_mark FROM meta.load_state WHERE stream = 'events'"
        try:
            if self.is_postgres:
                found = self.rows(sql)
            else:
                from warehouse.duckdb import WarehouseUnavailable, read_connection

                try:
                    with read_connection(self.location) as conn:
                        found = conn.execute(sql).fetchall()
                except WarehouseUnavailable:
                    return None
        except (duckdb.CatalogException, psycopg.errors.UndefinedTable):
            return None
        return int(found[0][0]) if found else None


def build_resources(settings: Settings) -> dict[str, object]:
    return {
        "store": StoreResource(database_url=settings.database_url),
        "warehouse": WarehouseResource(
            path=str(warehouse_location(settings).path), url=settings.warehouse_url
        ),
    }
