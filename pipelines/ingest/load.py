"""The loads into the DuckDB warehouse, free of Dagster so they can be tested (and crashed) directly.
`pipelines.ingest.targets` puts these and the PostgreSQL ones (`pipelines.ingest.postgres`) behind one
interface.

Events: incremental and idempotent. The store is read in one snapshot (`extract.open_snapshot`), the
rows stream as Arrow into one INSERT per id range (see `extract.EventRange`: only the re-read window
below the mark is deduplicated on event_id), and the high-water mark moves in the same DuckDB
transaction as the rows, so a crash anywhere leaves either the whole load or none of it. An event held
back by a store transaction longer than the window would be missed, which the count check
(`pipelines.ingest.checks`) reports.

Snapshots: the whole table is read in one store snapshot and replaces the raw table in one DuckDB
transaction, so readers see the old table or the new one, never a half-loaded one.
"""

from __future__ import annotations

import itertools
import time
from contextlib import ExitStack
from datetime import datetime

import duckdb
import pyarrow as pa

from pipelines.ingest.extract import (
    SQLITE_BATCH_ROWS,
    StoreRef,
    StoreSnapshot,
    event_range,
    open_snapshot,
)
from pipelines.ingest.results import (
    NO_HOOKS,
    EventLoad,
    Hook,
    LoadHooks,
    Progress,
    RowCounter,
    SnapshotLoad,
)
from pipelines.ingest.tables import EVENTS_TABLE, SourceTable, source_table
from warehouse.schema import EVENTS_STREAM, LOADED_AT, ensure_schema

__all__ = ["BATCH_ROWS", "LOOKBACK_IDS", "EventLoad", "SnapshotLoad", "load_events", "load_snapshot"]

BATCH_ROWS = SQLITE_BATCH_ROWS
LOOKBACK_IDS = 10_000
# SQLite reader processes for new events (PostgreSQL: one connection, its server does the work).
READ_WORKERS = 2
_views = itertools.count()


def _merge(hooks: LoadHooks | None, before_commit: Hook | None) -> LoadHooks:
    hooks = hooks or NO_HOOKS
    if before_commit is None:
        return hooks
    return LoadHooks(before_copy=hooks.before_copy, after_copy=hooks.after_copy, before_commit=before_commit)


def _ensure_events_table(wh: duckdb.DuckDBPyConnection, table: SourceTable) -> None:
    wh.execute(
        f"CREATE TABLE IF NOT EXISTS raw.events ({table.duckdb_columns()}, {LOADED_AT} TIMESTAMPTZ NOT NULL)"
    )
    # A column the store gained since the table was made (older rows keep NULL there).
    have = {
        r[0]
        for r in wh.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'raw' AND table_name = 'events'"
        ).fetchall()
    }
    for column in table.columns:
        if column.name not in have:
            wh.execute(f"ALTER TABLE raw.events ADD COLUMN {column.quoted} {column.kind.value}")


def _insert(
    wh: duckdb.DuckDBPyConnection,
    readers: list[pa.RecordBatchReader],
    table: SourceTable,
    snapshot: StoreSnapshot,
    *,
    target: str,
    extra: str = "",
    extra_params: list[object] | None = None,
    where: str = "",
) -> int:
    """One INSERT from all `readers` (DuckDB scans each in a thread of its own)."""
    views = [f"_ingest_{next(_views)}" for _ in readers]
    columns = ", ".join(c.quoted for c in table.columns)
    source = " UNION ALL ".join(f"SELECT * FROM {v}" for v in views)  # noqa: S608 (our view names)
    for view, reader in zip(views, readers, strict=True):
        wh.register(view, reader)
    into = f"{target} ({columns}{', ' + LOADED_AT if extra else ''})"
    select = f"{table.cast_sql(snapshot.dialect)}{', ' + extra if extra else ''}"
    # Names from the store's metadata, values bound.
    sql = f"INSERT INTO {into} SELECT {select} FROM ({source}) b {where}"  # noqa: S608
    try:
        (inserted,) = wh.execute(sql, extra_params or []).fetchall()[0]
    finally:
        for view in views:
            wh.unregister(view)
    return int(inserted)


def load_events(
    store: StoreRef,
    wh: duckdb.DuckDBPyConnection,
    *,
    now: datetime,
    batch_rows: int = BATCH_ROWS,
    lookback_ids: int = LOOKBACK_IDS,
    on_batch: Progress | None = None,
    before_commit: Hook | None = None,
    hooks: LoadHooks | None = None,
    read_workers: int = READ_WORKERS,
) -> EventLoad:
    """Append the store's new outbox events to raw.events. `store` is the store's URL (or an Engine
    on it). `on_batch` gets the running count of rows read. `before_commit` (kept for older callers) is
    `hooks.before_commit`."""
    started = time.perf_counter()
    points = _merge(hooks, before_commit)
    table = source_table(EVENTS_TABLE)
    ensure_schema(wh)
    _ensure_events_table(wh, table)
    counter = RowCounter(on_batch)
    wh.execute("BEGIN TRANSACTION")
    try:
        (previous,) = wh.execute(
            "SELECT high_water_mark FROM meta.load_state WHERE stream = ?", [EVENTS_STREAM]
        ).fetchall()[0]
        loaded = 0
        with open_snapshot(store, parallel_reads=read_workers) as snap:
            ids = event_range(snap, previous, lookback_ids)
            LoadHooks.call(points.before_copy)
            if ids.window_where is not None:
                with snap.read(table, where=ids.window_where, batch_rows=batch_rows, on_rows=counter) as rows:
                    # Bounded by id, so DuckDB compares with the window's rows only (zone maps on id).
                    loaded += _insert(
                        wh,
                        [rows],
                        table,
                        snap,
                        target="raw.events",
                        extra="?::TIMESTAMPTZ",
                        extra_params=[now, ids.floor, ids.previous],
                        where="""WHERE NOT EXISTS (
                            SELECT 1 FROM raw.events e
                            WHERE e.id > ? AND e.id <= ? AND e.event_id = b.event_id)""",
                    )
            parts = ids.new_parts(snap.parallel_reads)
            if parts:
                with ExitStack() as reads:
                    readers = [
                        reads.enter_context(
                            snap.read(table, where=part, batch_rows=batch_rows, on_rows=counter)
                        )
                        for part in parts
                    ]
                    loaded += _insert(
                        wh,
                        readers,
                        table,
                        snap,
                        target="raw.events",
                        extra="?::TIMESTAMPTZ",
                        extra_params=[now],
                    )
        LoadHooks.call(points.after_copy)
        (total,) = wh.execute("SELECT count(*) FROM raw.events").fetchall()[0]
        wh.execute(
            """UPDATE meta.load_state
                SET high_water_mark = ?, source_count = ?, rows_total = ?, rows_loaded = ?, loaded_at = ?
                WHERE stream = ?""",
            [ids.mark, ids.source_count, total, loaded, now, EVENTS_STREAM],
        )
        LoadHooks.call(points.before_commit)
        wh.execute("COMMIT")
    except BaseException:
        wh.execute("ROLLBACK")
        raise
    return EventLoad(
        rows_loaded=loaded,
        rows_read=counter.done,
        previous_mark=int(previous),
        high_water_mark=ids.mark,
        source_count=ids.source_count,
        rows_total=int(total),
        seconds=time.perf_counter() - started,
    )


def load_snapshot(
    store: StoreRef,
    wh: duckdb.DuckDBPyConnection,
    name: str,
    *,
    now: datetime,
    batch_rows: int = BATCH_ROWS,
    before_commit: Hook | None = None,
    hooks: LoadHooks | None = None,
) -> SnapshotLoad:
    """Replace raw.<name> with the store's table as of one snapshot, in one transaction."""
    started = time.perf_counter()
    points = _merge(hooks, before_commit)
    table = source_table(name)
    ensure_schema(wh)
    wh.execute("BEGIN TRANSACTION")
    try:
        # DuckDB views over raw tables bind by name at query time, so replacing the table keeps them.
        wh.execute(f"CREATE OR REPLACE TABLE raw.{table.quoted} ({table.duckdb_columns()})")
        with open_snapshot(store) as snap:
            LoadHooks.call(points.before_copy)
            with snap.read(table, order_by="id", batch_rows=batch_rows) as rows:
                count = _insert(wh, [rows], table, snap, target=f"raw.{table.quoted}")
        LoadHooks.call(points.after_copy)
        wh.execute(
            """INSERT INTO meta.snapshots (table_name, row_count, loaded_at) VALUES (?, ?, ?)
                ON CONFLICT (table_name) DO UPDATE SET row_count = excluded.row_count,
                    loaded_at = excluded.loaded_at""",
            [name, count, now],
        )
        LoadHooks.call(points.before_commit)
        wh.execute("COMMIT")
    except BaseException:
        wh.execute("ROLLBACK")
        raise
    return SnapshotLoad(table=name, rows=count, seconds=time.perf_counter() - started)
