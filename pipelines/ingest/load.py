"""The loads themselves, free of Dagster so they can be tested (and crashed) directly.

Events: incremental and idempotent. Rows are inserted only if their event_id is not in raw.events yet,
and the high-water mark moves in the same DuckDB transaction as the rows, so a crash anywhere leaves
either the whole load or none of it. On PostgreSQL ids come from a sequence at insert time, not at
commit: a transaction that commits late can leave an id below a mark already taken. Each load therefore
re-reads `lookback_ids` ids below the mark (dedupe drops what is already there); an event held back by
a transaction longer than that window would be missed, which the count check
(`pipelines.ingest.checks`) reports. On SQLite writers commit one at a time, so ids follow commit order.

Snapshots: the whole table is read in one store snapshot and replaces the raw table in one DuckDB
transaction, so readers see the old table or the new one, never a half-loaded one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import duckdb
from sqlalchemy import Engine

from pipelines.ingest.extract import read_batches, read_snapshot, scalar
from pipelines.ingest.tables import EVENTS_TABLE, SourceTable, source_table
from warehouse.schema import EVENTS_STREAM, ensure_schema

BATCH_ROWS = 50_000
LOOKBACK_IDS = 10_000
_BATCH_VIEW = "_ingest_batch"

Hook = Callable[[], None]
Progress = Callable[[int], None]


@dataclass(frozen=True)
class EventLoad:
    rows_loaded: int
    rows_read: int
    previous_mark: int
    high_water_mark: int
    source_count: int
    rows_total: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class SnapshotLoad:
    table: str
    rows: int
    seconds: float


def _events_table(table: SourceTable) -> str:
    columns = table.duckdb_columns()
    return f"CREATE TABLE IF NOT EXISTS raw.events ({columns}, _loaded_at TIMESTAMPTZ NOT NULL)"


def load_events(
    store: Engine,
    wh: duckdb.DuckDBPyConnection,
    *,
    now: datetime,
    batch_rows: int = BATCH_ROWS,
    lookback_ids: int = LOOKBACK_IDS,
    on_batch: Progress | None = None,
    before_commit: Hook | None = None,
) -> EventLoad:
    """Append the store's new outbox events to raw.events. `before_commit` runs after the inserts and
    the mark update, just before COMMIT (tests inject crashes there)."""
    started = time.perf_counter()
    table = source_table(EVENTS_TABLE)
    ensure_schema(wh)
    wh.execute(_events_table(table))
    wh.execute("BEGIN TRANSACTION")
    try:
        (previous,) = wh.execute(
            "SELECT high_water_mark FROM meta.load_state WHERE stream = ?", [EVENTS_STREAM]
        ).fetchall()[0]
        floor = max(previous - lookback_ids, 0)
        mark, read, loaded = previous, 0, 0
        with read_snapshot(store) as src:
            # Counted in the same store snapshot as the rows read, so the check can compare exactly.
            source_count = int(scalar(src, "SELECT count(*) FROM events"))
            sql = table.select_sql(where="id > :floor", order_by="id")
            for batch in read_batches(src, sql, {"floor": floor}, batch_rows=batch_rows):
                wh.register(_BATCH_VIEW, batch)
                try:
                    # The id range bounds the anti-join to the re-read window (DuckDB prunes row
                    # groups by id); the same event always has the same id in one store.
                    (inserted,) = wh.execute(
                        f"""INSERT INTO raw.events
                            SELECT {table.duckdb_casts()}, ?::TIMESTAMPTZ AS _loaded_at
                            FROM {_BATCH_VIEW} b
                            WHERE NOT EXISTS (
                                SELECT 1 FROM raw.events e
                                WHERE e.id > ? AND e.event_id = b.event_id
                            )""",  # noqa: S608 (column names from the store's metadata, values bound)
                        [now, floor],
                    ).fetchall()[0]
                finally:
                    wh.unregister(_BATCH_VIEW)
                loaded += inserted
                read += batch.num_rows
                mark = max(mark, int(batch.column("id")[-1].as_py()))
                if on_batch is not None:
                    on_batch(read)
        (total,) = wh.execute("SELECT count(*) FROM raw.events").fetchall()[0]
        wh.execute(
            """UPDATE meta.load_state
                SET high_water_mark = ?, source_count = ?, rows_total = ?, rows_loaded = ?, loaded_at = ?
                WHERE stream = ?""",
            [mark, source_count, total, loaded, now, EVENTS_STREAM],
        )
        if before_commit is not None:
            before_commit()
        wh.execute("COMMIT")
    except BaseException:
        wh.execute("ROLLBACK")
        raise
    return EventLoad(
        rows_loaded=loaded,
        rows_read=read,
        previous_mark=previous,
        high_water_mark=mark,
        source_count=source_count,
        rows_total=total,
        seconds=time.perf_counter() - started,
    )


def load_snapshot(
    store: Engine,
    wh: duckdb.DuckDBPyConnection,
    name: str,
    *,
    now: datetime,
    batch_rows: int = BATCH_ROWS,
    before_commit: Hook | None = None,
) -> SnapshotLoad:
    """Replace raw.<name> with the store's table as of one snapshot, in one transaction."""
    started = time.perf_counter()
    table = source_table(name)
    ensure_schema(wh)
    wh.execute("BEGIN TRANSACTION")
    try:
        wh.execute(f'CREATE OR REPLACE TABLE raw."{name}" ({table.duckdb_columns()})')
        rows = 0
        with read_snapshot(store) as src:
            for batch in read_batches(src, table.select_sql(order_by="id"), batch_rows=batch_rows):
                wh.register(_BATCH_VIEW, batch)
                try:
                    casts = table.duckdb_casts()
                    wh.execute(f'INSERT INTO raw."{name}" SELECT {casts} FROM {_BATCH_VIEW}')  # noqa: S608
                finally:
                    wh.unregister(_BATCH_VIEW)
                rows += batch.num_rows
        wh.execute(
            """INSERT INTO meta.snapshots (table_name, row_count, loaded_at) VALUES (?, ?, ?)
                ON CONFLICT (table_name) DO UPDATE SET row_count = excluded.row_count,
                    loaded_at = excluded.loaded_at""",
            [name, rows, now],
        )
        if before_commit is not None:
            before_commit()
        wh.execute("COMMIT")
    except BaseException:
        wh.execute("ROLLBACK")
        raise
    return SnapshotLoad(table=name, rows=rows, seconds=time.perf_counter() - started)
