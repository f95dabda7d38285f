"""The loads into the PostgreSQL warehouse (`Settings.warehouse_url`): the same tables, guarantees and
results as the DuckDB loads in `pipelines.ingest.load`.

The store's wire columns are cast by an in-memory DuckDB (the same expressions as the DuckDB target,
`SourceTable.cast_sql`) into Arrow of the warehouse's types, which ADBC copies in with COPY BINARY.

Events: one warehouse transaction per load. `SELECT ... FOR UPDATE` on the stream's meta row makes an
overlapping load wait and then read the first one's mark. New ids (above the mark) are copied straight
into raw.events; the re-read window below the mark goes through a temporary table and
`INSERT ... ON CONFLICT (event_id) DO NOTHING`. The unique constraint on event_id backs both. The mark
moves in the same transaction.

Snapshots: copied into a temporary table first, then, in the same transaction, raw.<name> is emptied
and refilled from it (TRUNCATE takes its lock only for that last step). The table keeps its identity,
so views over it (dbt's staging models) stay valid, which a DROP and RENAME of a new table would break:
PostgreSQL binds a view to the table, not to its name.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
from adbc_driver_manager.dbapi import Connection as AdbcConnection

from pipelines.ingest.extract import StoreRef, StoreSnapshot, event_range, open_snapshot
from pipelines.ingest.load import BATCH_ROWS, LOOKBACK_IDS
from pipelines.ingest.results import NO_HOOKS, EventLoad, LoadHooks, Progress, RowCounter, SnapshotLoad
from pipelines.ingest.tables import EVENTS_TABLE, SourceTable, postgres_type, source_table
from warehouse.postgres import ensure_schema, transaction
from warehouse.schema import EVENTS_STREAM, LOADED_AT, RAW

_temps = itertools.count()


def _columns(cur: Any, table: str) -> set[str]:
    cur.execute(
        "SELECT column_name FROM information_schema.columns "  # noqa: S608 (our own names)
        f"WHERE table_schema = '{RAW}' AND table_name = '{table}'"
    )
    return {r[0] for r in cur.fetchall()}


def _ensure_table(cur: Any, table: SourceTable, *, events: bool) -> None:
    """raw.<table> with the store's columns; a column the store gained since is added."""
    extra = f", {LOADED_AT} TIMESTAMPTZ NOT NULL" if events else ""
    # COLLATE "C": event_id is a UUID; byte order makes its unique index several times cheaper to
    # maintain than the database's locale collation, and equality is the same.
    unique = ', CONSTRAINT events_event_id_key UNIQUE ("event_id")' if events else ""
    columns = table.postgres_columns()
    if events:
        columns = columns.replace('"event_id" TEXT', '"event_id" TEXT COLLATE "C"')
    cur.execute(f"CREATE TABLE IF NOT EXISTS {RAW}.{table.quoted} ({columns}{extra}{unique})")
    have = _columns(cur, table.name)
    for column in table.columns:
        if column.name not in have:
            cur.execute(
                f"ALTER TABLE {RAW}.{table.quoted} ADD COLUMN {column.quoted} {postgres_type(column.kind)}"
            )


def _temp_like(cur: Any, table: str) -> str:
    """A new temporary table with raw.<table>'s columns and types (gone with the session, so a
    killed load leaves nothing behind)."""
    name = f"_ingest_{table}_{next(_temps)}"
    cur.execute(f'CREATE TEMPORARY TABLE {name} (LIKE {RAW}."{table}") ON COMMIT DROP')
    return name


@contextmanager
def _typed(
    wire: pa.RecordBatchReader, table: SourceTable, snapshot: StoreSnapshot, loaded_at: datetime | None
) -> Iterator[pa.RecordBatchReader]:
    """`wire` cast into the warehouse's Arrow types by an in-memory DuckDB, streamed."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("_wire", wire)
        stamp = f", TIMESTAMPTZ '{loaded_at.isoformat()}' AS {LOADED_AT}" if loaded_at is not None else ""
        casts = table.cast_sql(snapshot.dialect, json_as_text=True)
        yield con.sql(f"SELECT {casts}{stamp} FROM _wire").to_arrow_reader(BATCH_ROWS)  # noqa: S608
    finally:
        con.close()


def _copy(
    cur: Any,
    snapshot: StoreSnapshot,
    table: SourceTable,
    *,
    into: str,
    where: str = "",
    order_by: str = "",
    loaded_at: datetime | None = None,
    temporary: bool = False,
    batch_rows: int,
    on_rows: Progress | None,
) -> int:
    """Rows of `table` matching `where` copied into `into` (raw.<into>, or a temporary table)."""
    with (
        snapshot.read(table, where=where, order_by=order_by, batch_rows=batch_rows, on_rows=on_rows) as wire,
        _typed(wire, table, snapshot, loaded_at) as typed,
    ):
        if temporary:
            rows = cur.adbc_ingest(into, typed, mode="append", temporary=True)
        else:
            rows = cur.adbc_ingest(into, typed, mode="append", db_schema_name=RAW)
    return int(rows)


def load_events(
    store: StoreRef,
    wh: AdbcConnection,
    *,
    now: datetime,
    batch_rows: int = BATCH_ROWS,
    lookback_ids: int = LOOKBACK_IDS,
    on_batch: Progress | None = None,
    hooks: LoadHooks | None = None,
) -> EventLoad:
    """Append the store's new outbox events to raw.events in the PostgreSQL warehouse `wh` (see
    `warehouse.postgres.connect_write`)."""
    started = time.perf_counter()
    points = hooks or NO_HOOKS
    table = source_table(EVENTS_TABLE)
    ensure_schema(wh)
    counter = RowCounter(on_batch)
    with transaction(wh) as cur:
        _ensure_table(cur, table, events=True)
        cur.execute(
            "SELECT high_water_mark, rows_total FROM meta.load_state "  # noqa: S608 (a constant)
            f"WHERE stream = '{EVENTS_STREAM}' FOR UPDATE"
        )
        (previous, total_before) = cur.fetchone()
        loaded = 0
        columns = ", ".join(c.quoted for c in table.columns) + f", {LOADED_AT}"
        with open_snapshot(store) as snap:
            ids = event_range(snap, previous, lookback_ids)
            LoadHooks.call(points.before_copy)
            if ids.window_where is not None:
                temp = _temp_like(cur, "events")
                _copy(
                    cur,
                    snap,
                    table,
                    into=temp,
                    where=ids.window_where,
                    loaded_at=now,
                    temporary=True,
                    batch_rows=batch_rows,
                    on_rows=counter,
                )
                cur.execute(
                    f"WITH added AS (INSERT INTO {RAW}.events ({columns}) "  # noqa: S608
                    f"SELECT {columns} FROM {temp} ON CONFLICT (event_id) DO NOTHING RETURNING 1) "
                    "SELECT count(*) FROM added"
                )
                loaded += int(cur.fetchone()[0])
            if ids.new_where is not None:
                loaded += _copy(
                    cur,
                    snap,
                    table,
                    into="events",
                    where=ids.new_where,
                    loaded_at=now,
                    batch_rows=batch_rows,
                    on_rows=counter,
                )
        LoadHooks.call(points.after_copy)
        # Kept by the loads rather than counted: count(*) reads all of a large table on PostgreSQL.
        # The count check counts independently.
        total = int(total_before) + loaded
        values = (
            f"high_water_mark = {ids.mark}, source_count = {ids.source_count}, rows_total = {total}, "
            f"rows_loaded = {loaded}, loaded_at = TIMESTAMPTZ '{now.isoformat()}'"
        )
        # Our own integers and a time we formatted.
        cur.execute(f"UPDATE meta.load_state SET {values} WHERE stream = '{EVENTS_STREAM}'")  # noqa: S608
        LoadHooks.call(points.before_commit)
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
    wh: AdbcConnection,
    name: str,
    *,
    now: datetime,
    batch_rows: int = BATCH_ROWS,
    hooks: LoadHooks | None = None,
) -> SnapshotLoad:
    """Replace the rows of raw.<name> with the store's table as of one snapshot, in one transaction."""
    started = time.perf_counter()
    points = hooks or NO_HOOKS
    table = source_table(name)
    ensure_schema(wh)
    columns = ", ".join(c.quoted for c in table.columns)
    with transaction(wh) as cur:
        _ensure_table(cur, table, events=False)
        temp = _temp_like(cur, name)
        with open_snapshot(store) as snap:
            LoadHooks.call(points.before_copy)
            count = _copy(
                cur,
                snap,
                table,
                into=temp,
                order_by="id",
                temporary=True,
                batch_rows=batch_rows,
                on_rows=None,
            )
        cur.execute(f"TRUNCATE {RAW}.{table.quoted}")
        cur.execute(f"INSERT INTO {RAW}.{table.quoted} ({columns}) SELECT {columns} FROM {temp}")  # noqa: S608
        LoadHooks.call(points.after_copy)
        cur.execute(
            f"""INSERT INTO meta.snapshots (table_name, row_count, loaded_at)
                VALUES ('{name}', {count}, TIMESTAMPTZ '{now.isoformat()}')
                ON CONFLICT (table_name) DO UPDATE SET row_count = excluded.row_count,
                    loaded_at = excluded.loaded_at"""  # noqa: S608 (our own names and numbers)
        )
        LoadHooks.call(points.before_commit)
    return SnapshotLoad(table=name, rows=count, seconds=time.perf_counter() - started)
