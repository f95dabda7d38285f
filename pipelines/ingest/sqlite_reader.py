"""Reads one query from a SQLite store into an Arrow IPC stream on stdout, in a process of its own.

    python pipelines/ingest/sqlite_reader.py STORE_PATH BATCH_ROWS FLAG_COLUMN < query.sql

Why a process: the ADBC SQLite driver carries its own copy of the SQLite library. SQLite's locks are
POSIX advisory locks, which belong to the process and are all dropped when any descriptor of the file
is closed; one SQLite library keeps track of its own descriptors to cope, two copies in one process do
not know about each other. Seen here: after an ADBC connection closed, Python's sqlite3 connections on
the same store read stale pages and failed with "disk I/O error". The store's API and the ingest can
share a process (tests, `store` commands), so the driver only ever runs in this child.

Only the standard library, pyarrow and the driver's low-level API are imported, so the child starts
quickly (the DB-API module imports pyarrow.dataset, which imports pandas: seconds per child).
The query's first row must be the typed row flagged in FLAG_COLUMN (see SourceTable.select_sql); it is
checked and dropped here. Errors go to stderr with exit status 1; a reader that goes away (broken
pipe) ends the child."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import adbc_driver_manager
import adbc_driver_sqlite as adbc_sqlite
import pyarrow as pa

BUSY_TIMEOUT_MS = 10_000


def _without_typed_row(source: pa.RecordBatchReader, flag: str) -> Iterator[pa.RecordBatch]:
    first = True
    for batch in source:
        if first:
            index = batch.schema.get_field_index(flag)
            if index < 0 or batch.num_rows == 0 or batch.column(index)[0].as_py() != 1:
                raise RuntimeError("the query's first row is not the typed row")
            batch = batch.slice(1)
            first = False
        batch = batch.drop_columns([flag])
        if batch.num_rows:
            yield batch


def _run(conn: adbc_driver_manager.AdbcConnection, sql: str) -> None:
    statement = adbc_driver_manager.AdbcStatement(conn)
    try:
        statement.set_sql_query(sql)
        statement.execute_update()
    finally:
        statement.close()


def main(argv: list[str]) -> int:
    path, batch_rows, flag = argv[1], int(argv[2]), argv[3]
    sql = sys.stdin.read()
    db = adbc_sqlite.connect(path)
    conn = adbc_driver_manager.AdbcConnection(db)  # autocommit: we BEGIN ourselves
    try:
        _run(conn, f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _run(conn, "BEGIN")  # one read snapshot for the whole query
        statement = adbc_driver_manager.AdbcStatement(conn)
        try:
            statement.set_options(**{"adbc.sqlite.query.batch_rows": str(max(batch_rows, 1))})
            statement.set_sql_query(sql)
            handle, _rows = statement.execute_query()
            source = pa.RecordBatchReader._import_from_c(handle.address)
            schema = source.schema.remove(source.schema.get_field_index(flag))
            sink = pa.PythonFile(sys.stdout.buffer, mode="w")
            with pa.ipc.new_stream(sink, schema) as writer:
                for batch in _without_typed_row(source, flag):
                    writer.write_batch(batch)
            sys.stdout.buffer.flush()
            source.close()
        finally:
            statement.close()
        _run(conn, "ROLLBACK")
    finally:
        conn.close()
        db.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:
        sys.stderr.write(f"sqlite_reader: {type(exc).__name__}: {exc}\n")
        sys.exit(1)
