"""One entry point to the warehouse the settings choose, so callers (the Dagster assets, the bench, the
tests) never branch on it:

    with open_target(settings) as target:
        target.load_events(now=now)
        for name in SNAPSHOT_TABLES:
            target.load_snapshot(name, now=now)
        target.publish()

- DuckDB (default, `settings.warehouse_path`): one writer process at a time (the file lock; opening
  waits up to `write_wait_seconds` for another run), and `publish()` copies what is committed to the
  readers' snapshot file.
- PostgreSQL (`settings.warehouse_url` set): any number of writers (overlapping event loads queue on
  the stream's row), readers read the database directly and `publish()` does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Protocol

import duckdb
from adbc_driver_manager.dbapi import Connection as AdbcConnection

from api.core.settings import Settings
from pipelines.ingest import load as duck
from pipelines.ingest import postgres as pg
from pipelines.ingest.extract import StoreRef
from pipelines.ingest.load import BATCH_ROWS, LOOKBACK_IDS
from pipelines.ingest.results import EventLoad, LoadHooks, Progress, SnapshotLoad
from warehouse.duckdb import WRITE_WAIT_SECONDS, connect_write, publish_snapshot
from warehouse.postgres import connect_write as connect_postgres
from warehouse.schema import EVENTS_STREAM
from warehouse.settings import WarehouseLocation, warehouse_location


@dataclass(frozen=True)
class EventCounts:
    """What the checks compare: raw.events as it is, and what the last load saw in the store."""

    rows: int
    distinct_event_ids: int
    source_count: int | None  # the store's count when the last load read it (None: never loaded)
    high_water_mark: int


class WarehouseTarget(Protocol):
    kind: str  # "duckdb" or "postgres"
    store: str  # the store's URL (loads read it unless given another)

    def load_events(
        self,
        *,
        now: datetime | None = None,
        store: StoreRef | None = None,
        batch_rows: int = BATCH_ROWS,
        lookback_ids: int = LOOKBACK_IDS,
        on_batch: Progress | None = None,
        hooks: LoadHooks | None = None,
    ) -> EventLoad: ...

    def load_snapshot(
        self,
        name: str,
        *,
        now: datetime | None = None,
        store: StoreRef | None = None,
        batch_rows: int = BATCH_ROWS,
        hooks: LoadHooks | None = None,
    ) -> SnapshotLoad: ...

    def publish(self) -> Path | None:
        """Make what is committed visible to readers (DuckDB: the read snapshot's path)."""
        ...

    def event_counts(self) -> EventCounts: ...

    def close(self) -> None: ...

    def __enter__(self) -> WarehouseTarget: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("load times are UTC and timezone-aware")
    return now


class _Loads(Protocol):
    """A module of loads into one kind of warehouse (`pipelines.ingest.load`, `pipelines.ingest.postgres`)."""

    def load_events(
        self,
        store: StoreRef,
        wh: Any,
        /,
        *,
        now: datetime,
        batch_rows: int = ...,
        lookback_ids: int = ...,
        on_batch: Progress | None = ...,
        hooks: LoadHooks | None = ...,
    ) -> EventLoad: ...

    def load_snapshot(
        self,
        store: StoreRef,
        wh: Any,
        name: str,
        /,
        *,
        now: datetime,
        batch_rows: int = ...,
        hooks: LoadHooks | None = ...,
    ) -> SnapshotLoad: ...


class _Target:
    """What both warehouses share: the loads go to their module with this target's connection."""

    loads: ClassVar[_Loads]
    store: str
    conn: Any

    def load_events(
        self,
        *,
        now: datetime | None = None,
        store: StoreRef | None = None,
        batch_rows: int = BATCH_ROWS,
        lookback_ids: int = LOOKBACK_IDS,
        on_batch: Progress | None = None,
        hooks: LoadHooks | None = None,
    ) -> EventLoad:
        return self.loads.load_events(
            store if store is not None else self.store,
            self.conn,
            now=_now(now),
            batch_rows=batch_rows,
            lookback_ids=lookback_ids,
            on_batch=on_batch,
            hooks=hooks,
        )

    def load_snapshot(
        self,
        name: str,
        *,
        now: datetime | None = None,
        store: StoreRef | None = None,
        batch_rows: int = BATCH_ROWS,
        hooks: LoadHooks | None = None,
    ) -> SnapshotLoad:
        return self.loads.load_snapshot(
            store if store is not None else self.store,
            self.conn,
            name,
            now=_now(now),
            batch_rows=batch_rows,
            hooks=hooks,
        )

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> WarehouseTarget:
        return self  # type: ignore[return-value]

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class DuckDBTarget(_Target):
    kind = "duckdb"
    loads: ClassVar[_Loads] = duck

    def __init__(
        self, location: WarehouseLocation, store: str, *, write_wait_seconds: float = WRITE_WAIT_SECONDS
    ) -> None:
        self.location = location
        self.store = store
        self.conn: duckdb.DuckDBPyConnection = connect_write(location.path, wait_seconds=write_wait_seconds)

    def publish(self) -> Path | None:
        return publish_snapshot(self.conn, self.location)

    def event_counts(self) -> EventCounts:
        rows, distinct = self.conn.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM raw.events"
        ).fetchall()[0]
        state = self.conn.execute(
            "SELECT source_count, high_water_mark FROM meta.load_state WHERE stream = ?", [EVENTS_STREAM]
        ).fetchall()
        source_count, mark = state[0] if state else (None, 0)
        return EventCounts(int(rows), int(distinct), source_count, int(mark))


class PostgresTarget(_Target):
    kind = "postgres"
    loads: ClassVar[_Loads] = pg

    def __init__(self, url: str, store: str) -> None:
        self.url = url
        self.store = store
        self.conn: AdbcConnection = connect_postgres(url)

    def publish(self) -> Path | None:
        return None  # readers query the database itself

    def event_counts(self) -> EventCounts:
        with self.conn.cursor() as cur:
            cur.execute("SELECT count(*), count(DISTINCT event_id) FROM raw.events")
            counted = cur.fetchone()
            assert counted is not None
            rows, distinct = counted
            cur.execute(
                "SELECT source_count, high_water_mark FROM meta.load_state "  # noqa: S608 (a constant)
                f"WHERE stream = '{EVENTS_STREAM}'"
            )
            state = cur.fetchone()
        source_count, mark = state if state else (None, 0)
        return EventCounts(int(rows), int(distinct), source_count, int(mark))


def open_target(
    settings: Settings, *, write_wait_seconds: float = WRITE_WAIT_SECONDS
) -> DuckDBTarget | PostgresTarget:
    """The warehouse `settings` chooses, open for writing. Close it (or use it as a context manager)."""
    if settings.warehouse_url:
        return PostgresTarget(settings.warehouse_url, settings.database_url)
    return DuckDBTarget(
        warehouse_location(settings), settings.database_url, write_wait_seconds=write_wait_seconds
    )
