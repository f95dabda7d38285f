"""The warehouse's fixed layout: `raw` holds what the pipelines load, `meta` how far they got."""

from __future__ import annotations

import duckdb

RAW = "raw"
META = "meta"
EVENTS_STREAM = "events"

_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {RAW}",
    f"CREATE SCHEMA IF NOT EXISTS {META}",
    # One row per incremental stream. The row exists before the first load so that two overlapping
    # loads both UPDATE it: DuckDB then aborts the second with a write-write conflict instead of letting
    # both commit the same rows.
    f"""CREATE TABLE IF NOT EXISTS {META}.load_state (
        stream VARCHAR PRIMARY KEY,
        high_water_mark BIGINT NOT NULL DEFAULT 0,
        source_count BIGINT,
        rows_total BIGINT NOT NULL DEFAULT 0,
        rows_loaded BIGINT NOT NULL DEFAULT 0,
        loaded_at TIMESTAMPTZ
    )""",
    f"""CREATE TABLE IF NOT EXISTS {META}.snapshots (
        table_name VARCHAR PRIMARY KEY,
        row_count BIGINT NOT NULL,
        loaded_at TIMESTAMPTZ NOT NULL
    )""",
)


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    for statement in _DDL:
        conn.execute(statement)
    conn.execute("INSERT INTO meta.load_state (stream) VALUES (?) ON CONFLICT DO NOTHING", [EVENTS_STREAM])
