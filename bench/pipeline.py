"""Issue 5's load targets: store events into the warehouse, events/s, against dlt.

    python -m bench.pipeline                              # 10M events, SQLite and PostgreSQL stores
    python -m bench.pipeline --events 1000000 --source sqlite
    python -m bench.pipeline --skip-dlt --skip-extract

Rows of the table (each a function returning rows, so more can be added, e.g. the dbt build time and
freshness: append a function to EXTRA_ROWS):
- extract: store -> Arrow only, per driver (ADBC as the loads use it, connectorx, SQLAlchemy rows; the
  last on at most 1M rows), the measurement behind the choice of ADBC;
- load: the whole event load as the pipelines run it (`open_target(...).load_events()` into an empty
  warehouse): SQLite -> DuckDB, PostgreSQL -> DuckDB, SQLite -> PostgreSQL warehouse (and PostgreSQL ->
  PostgreSQL);
- dlt: the same events with dlt's `sql_database` source into DuckDB, backend "pyarrow" (dlt's fastest
  backend that reads these tables: "connectorx" cannot type SQLite's NUMERIC/JSON columns whose first
  value is NULL) and parquet load files, and the ratio to our SQLite -> DuckDB load.

The stores come from bench/bulk_store.py (BULK GENERATOR, cached under data/bench/). Figures go to
bench/results/pipeline.json.
"""

from __future__ import annotations

import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.core.settings import Environment, Settings
from bench.bulk_store import CACHE_DIR, ensure_store
from bench.figures import ROOT, save
from bench.stores import PG_ADMIN_URL, Backend
from pipelines.ingest.extract import StoreLocation, event_range, open_snapshot
from pipelines.ingest.tables import EVENTS_TABLE, Dialect, source_table
from pipelines.ingest.targets import open_target

console = Console()
RESULTS = ROOT / "bench" / "results" / "pipeline.json"
TARGET_EVENTS_PER_SECOND = 1_000_000
TARGET_DLT_RATIO = 5.0
SQLALCHEMY_CAP = 1_000_000
WAREHOUSE_DB = "bench_pipeline_warehouse"
app = typer.Typer(add_completion=False)


@dataclass(frozen=True)
class Row:
    """One line of the table: what was measured, how many rows in how long."""

    kind: str  # extract, load, dlt, ratio, ... (dbt, freshness later)
    path: str
    rows: int
    seconds: float
    note: str = ""

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


# Functions run after the built-in measurements, each returning more rows (dbt build, freshness, ...).
EXTRA_ROWS: list[Callable[[dict[str, str], int], list[Row]]] = []


def bench_settings(store_url: str, work: Path, warehouse_url: str | None = None) -> Settings:
    """A bench run's settings: the given store, the warehouse under `work`, no Redis, no .env."""
    return Settings(
        environment=Environment.development,
        database_url=store_url,
        data_dir=work,
        warehouse_path=work / "warehouse.duckdb",
        warehouse_url=warehouse_url,
        redis_url=None,
        auto_migrate=False,
        jwt_secret="bench-" + "x" * 40,
        _env_file=None,
    )


def _fresh_dir(name: str) -> Path:
    path = CACHE_DIR / "runs" / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _fresh_pg_warehouse() -> str:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{WAREHOUSE_DB}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{WAREHOUSE_DB}"'))
    finally:
        admin.dispose()
    return make_url(PG_ADMIN_URL).set(database=WAREHOUSE_DB).render_as_string(hide_password=False)


# --- extract only -------------------------------------------------------------------------------------


def extract_rows(stores: dict[str, str]) -> list[Row]:
    table = source_table(EVENTS_TABLE)
    rows: list[Row] = []
    for backend, url in stores.items():
        with console.status(f"extract {backend}: ADBC…"):
            started = time.perf_counter()
            with open_snapshot(url) as snap:
                ids = event_range(snap, 0, 0)
                with snap.read(table, where=ids.new_where or "id > 0") as reader:
                    n = sum(batch.num_rows for batch in reader)
            rows.append(Row("extract", f"{backend} -> Arrow (ADBC)", n, time.perf_counter() - started))
        rows.append(_connectorx(backend, url))
        rows.append(_sqlalchemy(backend, url))
    return rows


def _connectorx(backend: str, url: str) -> Row:
    import connectorx as cx

    location = StoreLocation.of(url)
    source = f"sqlite://{location.uri}" if backend == "sqlite" else location.uri
    sql = "SELECT id, event_id, event_type, occurred_at, recorded_at, actor_user_id, entity_type, " + (
        "entity_id, shop_id, product_id, order_id, request_id, CAST(payload AS TEXT) AS payload FROM events"
    )
    with console.status(f"extract {backend}: connectorx…"):
        started = time.perf_counter()
        try:
            n = cx.read_sql(source, sql, return_type="arrow", partition_on="id", partition_num=2).num_rows
        except Exception as exc:  # reported, not fatal: the point is the comparison
            return Row("extract", f"{backend} -> Arrow (connectorx)", 0, 0.0, f"failed: {exc}"[:80])
    return Row("extract", f"{backend} -> Arrow (connectorx, 2 partitions)", n, time.perf_counter() - started)


def _sqlalchemy(backend: str, url: str) -> Row:
    from pipelines.ingest.extract import create_source_engine, read_batches, read_snapshot

    table = source_table(EVENTS_TABLE)
    # Money and JSON as text, as the loads before ADBC read them (CAST is the same on both databases).
    cols = ", ".join(s for c in table.columns for s in c.select(Dialect.postgresql))
    engine = create_source_engine(url)
    with console.status(f"extract {backend}: SQLAlchemy rows (first {SQLALCHEMY_CAP:,})…"):
        started = time.perf_counter()
        n = 0
        try:
            with read_snapshot(engine) as conn:
                sql = f"SELECT {cols} FROM events WHERE id <= {SQLALCHEMY_CAP}"
                n = sum(t.num_rows for t in read_batches(conn, sql))
        finally:
            engine.dispose()
    return Row("extract", f"{backend} -> Arrow (SQLAlchemy rows)", n, time.perf_counter() - started)


# --- loads ----------------------------------------------------------------------------------------------


def _load(path: str, settings: Settings, n: int) -> Row:
    with console.status(f"load {path}: {n:,} events…"), open_target(settings) as target:
        result = target.load_events()
        target.publish()
    assert result.rows_loaded == n, (result.rows_loaded, n)
    return Row("load", path, result.rows_loaded, result.seconds)


def load_rows(stores: dict[str, str], n: int) -> list[Row]:
    rows: list[Row] = []
    for backend, url in stores.items():
        rows.append(_load(f"{backend} -> DuckDB", bench_settings(url, _fresh_dir(f"duckdb-{backend}")), n))
        warehouse = _fresh_pg_warehouse()
        rows.append(
            _load(
                f"{backend} -> PostgreSQL warehouse",
                bench_settings(url, _fresh_dir(f"pg-{backend}"), warehouse),
                n,
            )
        )
    return rows


def dlt_rows(stores: dict[str, str], n: int) -> list[Row]:
    import dlt
    from dlt.sources.sql_database import sql_database

    if "sqlite" not in stores:
        return []
    work = _fresh_dir("dlt")
    os.environ["DLT_DATA_DIR"] = str(work / "dlt-data")
    pipeline = dlt.pipeline(
        pipeline_name="bench_events",
        destination=dlt.destinations.duckdb(str(work / "dlt.duckdb")),
        dataset_name="raw",
        pipelines_dir=str(work / "pipelines"),
    )
    source = sql_database(
        stores["sqlite"], table_names=["events"], backend="pyarrow", chunk_size=100_000
    ).with_resources("events")
    with console.status(f"dlt sql_database (pyarrow) sqlite -> DuckDB: {n:,} events…"):
        started = time.perf_counter()
        pipeline.run(source, loader_file_format="parquet", write_disposition="append")
        seconds = time.perf_counter() - started
    return [Row("dlt", "sqlite -> DuckDB (dlt sql_database, pyarrow backend)", n, seconds)]


def _table(rows: list[Row], n: int) -> Table:
    table = Table(title=f"Store -> warehouse, {n:,} events ({os.cpu_count()} CPUs)")
    for col in ("kind", "path", "rows", "seconds", "rows/s", "note"):
        table.add_column(col, justify="left" if col in ("kind", "path", "note") else "right")
    for r in rows:
        table.add_row(r.kind, r.path, f"{r.rows:,}", f"{r.seconds:.2f}", f"{r.per_second:,.0f}", r.note)
    return table


@app.command()
def main(
    events: int = typer.Option(10_000_000, "--events", min=1000, help="events in the generated store"),
    source: Backend = typer.Option(Backend.both, "--source", help="store database(s) to read"),
    skip_dlt: bool = typer.Option(False, "--skip-dlt", help="leave out the dlt comparison"),
    skip_extract: bool = typer.Option(False, "--skip-extract", help="leave out the extract-only rows"),
) -> None:
    backends = [Backend.sqlite, Backend.postgres] if source is Backend.both else [source]
    stores = {b.value: ensure_store(b, events, console) for b in backends}
    rows: list[Row] = []
    if not skip_extract:
        rows += extract_rows(stores)
    rows += load_rows(stores, events)
    if not skip_dlt:
        rows += dlt_rows(stores, events)
        ours = next((r for r in rows if r.path == "sqlite -> DuckDB"), None)
        theirs = next((r for r in rows if r.kind == "dlt"), None)
        if ours and theirs and ours.seconds > 0:
            ratio = theirs.seconds / ours.seconds
            rows.append(
                Row(
                    "ratio",
                    "our load vs dlt (sqlite -> DuckDB)",
                    events,
                    ours.seconds,
                    f"{ratio:.1f}x faster",
                )
            )
    for extra in EXTRA_ROWS:
        rows += extra(stores, events)
    console.print(_table(rows, events))
    best = max((r.per_second for r in rows if r.kind == "load"), default=0.0)
    console.print(
        f"target: >= {TARGET_EVENTS_PER_SECOND:,} events/s per load, >= {TARGET_DLT_RATIO:.0f}x dlt; "
        f"best load {best:,.0f} events/s"
    )
    save(
        RESULTS,
        {
            f"events_{events}": {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "rows": [{**asdict(r), "per_second": round(r.per_second)} for r in rows],
            }
        },
        console,
    )


if __name__ == "__main__":
    app()
