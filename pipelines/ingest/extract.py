"""Reading the store: one consistent snapshot per load, streamed as Arrow record batches.

The loads read through ADBC (C drivers that fill Arrow buffers directly: SQLite's C API, PostgreSQL's
COPY ... TO STDOUT BINARY). Measured by bench/pipeline.py on 1M events (2 shared CPUs): SQLAlchemy rows
121k/s (SQLite) and 53k/s (PostgreSQL), ADBC 243k/s and 301k/s, connectorx with 2 partitions 483k/s
and 337k/s. connectorx is not used even so: it cannot type a NUMERIC, JSON or computed SQLite column
whose first value is NULL (the store has many), it reads partitions on connections that PostgreSQL
shows different snapshots, and on SQLite it would need the same child process as the ADBC driver (it
bundles its own SQLite too, see `sqlite_reader`). DuckDB's sqlite and postgres scanners would be faster
still but are extensions downloaded at first use, which offline machines (CI) cannot do.

SQLite: the driver runs in child processes (see `sqlite_reader` for why), one per query, each in its
own read transaction; the counts run here on Python's sqlite3. Rows of `events` up to an id fixed in the
first snapshot are the same in every later one (writers commit one at a time, ids in commit order, and
events are never updated or deleted), so the children's reads agree with the counts, and the id range
can be split across several children that read in parallel.
PostgreSQL: one connection in a REPEATABLE READ, READ ONLY transaction for everything.

The SQLAlchemy helpers at the end (`create_source_engine`, `read_snapshot`, `scalar`, `read_batches`)
stay for callers that query the store row by row (the count check)."""

from __future__ import annotations

import itertools
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as adbc_postgres
import pyarrow as pa
from adbc_driver_manager.dbapi import Connection as AdbcConnection
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from pipelines.ingest.tables import TYPED_ROW_FLAG, Dialect, SourceTable
from warehouse.postgres import libpq_uri

SQLITE_BUSY_MS = 10_000
# Rows per Arrow batch read from SQLite (the driver's default, 1024, costs a round trip per thousand
# rows downstream).
SQLITE_BATCH_ROWS = 65_536
_READER = Path(__file__).with_name("sqlite_reader.py")

StoreRef = str | URL | Engine
RowsRead = Callable[[int], None]


@dataclass(frozen=True)
class StoreLocation:
    """Where the store is, in the form the drivers take."""

    dialect: Dialect
    uri: str  # SQLite: the file's path; PostgreSQL: a libpq URI

    @classmethod
    def of(cls, store: StoreRef) -> StoreLocation:
        url = store.url if isinstance(store, Engine) else make_url(store)
        backend = url.get_backend_name()
        if backend == "sqlite":
            if not url.database or url.database == ":memory:":
                raise ValueError("the ingest reads a SQLite store from a file, not an in-memory database")
            return cls(Dialect.sqlite, str(Path(url.database)))
        if backend == "postgresql":
            return cls(Dialect.postgresql, libpq_uri(url.render_as_string(hide_password=False)))
        raise ValueError(f"unsupported store database: {backend}")


class StoreSnapshot:
    """One read-only view of the store's committed state (see the module's docstring)."""

    dialect: Dialect
    # How many reads of disjoint id ranges of `events` may run at once.
    parallel_reads: int = 1

    def scalars(self, sql: str) -> tuple[Any, ...]:
        """The first row of `sql`."""
        raise NotImplementedError

    def read(
        self,
        table: SourceTable,
        *,
        where: str = "",
        order_by: str = "",
        batch_rows: int = SQLITE_BATCH_ROWS,
        on_rows: RowsRead | None = None,
    ) -> Any:
        """A context manager giving the wire columns (see `tables`) of `table`'s rows matching `where`
        as a `pa.RecordBatchReader`, valid inside the block. `on_rows` gets the number of rows of each
        batch as it is read."""
        raise NotImplementedError


class _PostgresSnapshot(StoreSnapshot):
    dialect = Dialect.postgresql

    def __init__(self, conn: AdbcConnection) -> None:
        self._conn = conn

    def scalars(self, sql: str) -> tuple[Any, ...]:
        with self._conn.cursor() as cur:
            cur.execute(sql)
            row = cur.fetchone()
        if row is None:
            raise LookupError(f"no row from {sql}")
        return tuple(row)

    @contextmanager
    def read(
        self,
        table: SourceTable,
        *,
        where: str = "",
        order_by: str = "",
        batch_rows: int = SQLITE_BATCH_ROWS,
        on_rows: RowsRead | None = None,
    ) -> Iterator[pa.RecordBatchReader]:
        cur = self._conn.cursor()
        try:
            cur.execute(table.select_sql(self.dialect, where=where, order_by=order_by))
            source = cur.fetch_record_batch()
            yield _counted(source.schema, source, on_rows)
        finally:
            cur.close()


class _SqliteSnapshot(StoreSnapshot):
    dialect = Dialect.sqlite

    def __init__(self, path: str, conn: sqlite3.Connection, parallel_reads: int) -> None:
        self._path = path
        self._conn = conn
        self.parallel_reads = max(1, parallel_reads)

    def scalars(self, sql: str) -> tuple[Any, ...]:
        row = self._conn.execute(sql).fetchone()
        if row is None:
            raise LookupError(f"no row from {sql}")
        return tuple(row)

    @contextmanager
    def read(
        self,
        table: SourceTable,
        *,
        where: str = "",
        order_by: str = "",
        batch_rows: int = SQLITE_BATCH_ROWS,
        on_rows: RowsRead | None = None,
    ) -> Iterator[pa.RecordBatchReader]:
        proc = subprocess.Popen(  # noqa: S603 (our own script, arguments we built)
            [sys.executable, str(_READER), self._path, str(batch_rows), TYPED_ROW_FLAG],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        try:
            proc.stdin.write(table.select_sql(self.dialect, where=where, order_by=order_by).encode())
            proc.stdin.close()
            try:
                source = pa.ipc.open_stream(pa.PythonFile(proc.stdout, mode="r"))
            except (pa.ArrowInvalid, OSError) as exc:
                raise _child_failed(proc) from exc
            yield _counted(source.schema, _checked(source, proc), on_rows)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()


def _child_failed(proc: subprocess.Popen[bytes]) -> RuntimeError:
    assert proc.stderr is not None
    proc.wait()
    message = proc.stderr.read().decode(errors="replace").strip()
    return RuntimeError(f"reading the SQLite store failed (exit {proc.returncode}): {message}")


def _checked(source: pa.RecordBatchReader, proc: subprocess.Popen[bytes]) -> Iterator[pa.RecordBatch]:
    """The child's batches; its failure (a truncated stream, a non-zero exit) raised here."""
    try:
        yield from source
    except (pa.ArrowInvalid, OSError) as exc:
        raise _child_failed(proc) from exc
    if proc.wait() != 0:
        raise _child_failed(proc)


def _counted(
    schema: pa.Schema, batches: Iterator[pa.RecordBatch] | pa.RecordBatchReader, on_rows: RowsRead | None
) -> pa.RecordBatchReader:
    if on_rows is None:
        return pa.RecordBatchReader.from_batches(schema, batches)

    def counting() -> Iterator[pa.RecordBatch]:
        for batch in batches:
            on_rows(batch.num_rows)
            yield batch

    return pa.RecordBatchReader.from_batches(schema, counting())


@contextmanager
def open_snapshot(store: StoreRef | StoreLocation, *, parallel_reads: int = 1) -> Iterator[StoreSnapshot]:
    """A read-only view of the store (SQLite: a WAL read transaction for the counts, children for the
    rows; PostgreSQL: one REPEATABLE READ, READ ONLY transaction). `parallel_reads`: how many SQLite
    children may read disjoint id ranges of `events` at once."""
    location = store if isinstance(store, StoreLocation) else StoreLocation.of(store)
    if location.dialect is Dialect.sqlite:
        if not Path(location.uri).exists():
            raise FileNotFoundError(f"no SQLite store at {location.uri}")
        lite = sqlite3.connect(location.uri, timeout=SQLITE_BUSY_MS / 1000, isolation_level=None)
        try:
            lite.execute("BEGIN")
            yield _SqliteSnapshot(location.uri, lite, parallel_reads)
            lite.execute("ROLLBACK")
        finally:
            lite.close()
        return
    conn = adbc_postgres.connect(location.uri, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield _PostgresSnapshot(conn)
        finally:
            with conn.cursor() as cur:
                cur.execute("ROLLBACK")  # read-only: nothing to commit
    finally:
        conn.close()


# --- SQLAlchemy (row by row) ----------------------------------------------------------------------------


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
    PostgreSQL); the slow path kept as a reference for the benchmark."""
    result = conn.execution_options(stream_results=True, yield_per=batch_rows).execute(
        text(sql), dict(params or {})
    )
    names = list(result.keys())
    for rows in result.partitions(batch_rows):
        columns = list(zip(*rows, strict=True))
        yield pa.table({name: pa.array(values) for name, values in zip(names, columns, strict=True)})


# --- what an event load reads ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRange:
    """The event ids one load reads, fixed in its store snapshot.

    `new` rows (previous < id <= upper) cannot be in the warehouse yet: the mark and the rows below it
    are committed together. `window` rows (floor < id <= previous) may be, or may have been skipped:
    on PostgreSQL an id is taken at insert and becomes visible at commit, so a transaction committing
    late can leave an id below a mark already loaded. Only the window is deduplicated, which keeps the
    dedupe's cost to `lookback_ids` rows however large the warehouse."""

    previous: int
    floor: int
    upper: int
    source_count: int

    @property
    def window_where(self) -> str | None:
        top = min(self.previous, self.upper)
        return f"id > {self.floor} AND id <= {top}" if top > self.floor else None

    @property
    def new_where(self) -> str | None:
        return f"id > {self.previous} AND id <= {self.upper}" if self.upper > self.previous else None

    def new_parts(self, parts: int) -> list[str]:
        """The new ids split into up to `parts` consecutive ranges of about equal width."""
        span = self.upper - self.previous
        if span <= 0:
            return []
        parts = max(1, min(parts, span))
        bounds = [self.previous + span * i // parts for i in range(parts + 1)]
        return [f"id > {lo} AND id <= {hi}" for lo, hi in itertools.pairwise(bounds)]

    @property
    def mark(self) -> int:
        return max(self.previous, self.upper)


def event_range(snapshot: StoreSnapshot, previous: int, lookback_ids: int) -> EventRange:
    # Two statements: SQLite answers a bare count(*) from its smallest index and max(id) from the
    # rowid tree, but scans the table for both at once.
    (count,) = snapshot.scalars("SELECT count(*) FROM events")
    (upper,) = snapshot.scalars("SELECT coalesce(max(id), 0) FROM events")
    return EventRange(
        previous=int(previous),
        floor=max(int(previous) - lookback_ids, 0),
        upper=int(upper),
        source_count=int(count),
    )
