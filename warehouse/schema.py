"""The warehouse's fixed layout, the same on DuckDB and PostgreSQL: `raw` holds what the pipelines
load, `meta` how far they got. The raw tables' columns follow the store's (pipelines.ingest.tables)."""

from __future__ import annotations

import duckdb

RAW = "raw"
META = "meta"
EVENTS_STREAM = "events"
# When the load that brought a raw.events row committed (not when the event happened).
LOADED_AT = "_loaded_at"

_SCHEMAS = (
    f"CREATE SCHEMA IF NOT EXISTS {RAW}",
    f"CREATE SCHEMA IF NOT EXISTS {META}",
)
# One row per incremental stream. The row exists before the first load so that two overlapping loads
# both UPDATE it: DuckDB then aborts the second with a write-write conflict, PostgreSQL makes it wait
# (SELECT ... FOR UPDATE) and read the first one's mark, instead of letting both commit the same rows.
_LOAD_STATE = f"""CREATE TABLE IF NOT EXISTS {META}.load_state (
        stream VARCHAR PRIMARY KEY,
        high_water_mark BIGINT NOT NULL DEFAULT 0,
        source_count BIGINT,
        rows_total BIGINT NOT NULL DEFAULT 0,
        rows_loaded BIGINT NOT NULL DEFAULT 0,
        loaded_at TIMESTAMPTZ
    )"""
_SNAPSHOTS = f"""CREATE TABLE IF NOT EXISTS {META}.snapshots (
        table_name VARCHAR PRIMARY KEY,
        row_count BIGINT NOT NULL,
        loaded_at TIMESTAMPTZ NOT NULL
    )"""
# VARCHAR is TEXT on PostgreSQL too; the statements run unchanged on both.
DDL = (*_SCHEMAS, _LOAD_STATE, _SNAPSHOTS)
SEED_LOAD_STATE = f"INSERT INTO {META}.load_state (stream) VALUES ('{EVENTS_STREAM}') ON CONFLICT DO NOTHING"  # noqa: S608


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        conn.execute(statement)
    conn.execute(SEED_LOAD_STATE)
