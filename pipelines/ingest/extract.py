"""Reading the store: one consistent snapshot per load, streamed in Arrow batches.

DuckDB's sqlite and postgres scanners would read faster but are extensions downloaded at first use,
which offline machines (CI) cannot do; SQLAlchemy batches into Arrow work everywhere."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

SQLITE_BUSY_MS = 10_000


def create_source_engine(database_url: str) -> Engine:
    """An engine for reading the store. No pool: a load opens one connection and keeps it."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, poolclass=NullPool)
    engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": SQLITE_BUSY_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # pysqlite starts transactions only before writes; we BEGIN ourselves (below) so that all the
        # reads of a load see one snapshot of the WAL-mode store.
        dbapi_conn.isolation_level = None
        dbapi_conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction in which every statement sees the same committed state of the store."""
    options: dict[str, Any] = {}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "REPEATABLE READ"
        options["postgresql_readonly"] = True
    with engine.connect() as conn:
        conn = conn.execution_options(**options) if options else conn
        with conn.begin():
            yield conn


def scalar(conn: Connection, sql: str, params: Mapping[str, Any] | None = None) -> Any:
    return conn.execute(text(sql), dict(params or {})).scalar_one()


def read_batches(
    conn: Connection, sql: str, params: Mapping[str, Any] | None = None, *, batch_rows: int = 50_000
) -> Iterator[pa.Table]:
    """The rows of `sql` as Arrow tables of up to `batch_rows` rows, streamed (server-side cursor on
    PostgreSQL) so memory stays flat however large the store."""
    result = conn.execution_options(stream_results=True, yield_per=batch_rows).execute(
        text(sql), dict(params or {})
    )
    names = list(result.keys())
    for rows in result.partitions(batch_rows):
        columns = list(zip(*rows, strict=True))
        yield pa.table({name: pa.array(values) for name, values in zip(names, columns, strict=True)})
