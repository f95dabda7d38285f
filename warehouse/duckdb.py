"""Connections to the warehouse file, and the read snapshot that keeps readers off the writer's lock.

What DuckDB's file locking allows (measured with duckdb 2.0, see tests/warehouse/test_duckdb.py):
- a read-write connection takes an exclusive lock on the file: while any process has one open, every
  other process fails at once to open the file, read-only or not ("Could not set lock on file");
- read-only connections share the lock, so while any reader has the file open no process can write;
- inside one process, a second connection to the same file with a different `read_only` flag fails.

So a reader that opened the warehouse itself would fail (or wait minutes) during every load, and a
dashboard that kept it open would stop the pipelines. Instead the pipelines publish a copy after each
committed load: DuckDB copies the database into a new file (COPY FROM DATABASE) while the writer still
holds the lock, then the copy is renamed over `<name>.read.duckdb`. A rename swaps the path to the new file in
one step; readers that already have the old file open keep reading it (the lock and the data belong to
the open file, not the path), new readers get the new one. Readers never touch the writer's file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from warehouse.settings import WarehouseLocation

# How long a writer waits for another writer (an overlapping run) before giving up.
WRITE_WAIT_SECONDS = 60.0
# Readers only ever wait for a reader-side race (e.g. a first snapshot being published), briefly.
READ_WAIT_SECONDS = 2.0
_RETRY_SLEEP = 0.05
# The catalog name a reader's snapshot is attached under.
SNAPSHOT_CATALOG = "warehouse"


class WarehouseUnavailable(RuntimeError):
    """The warehouse (or its read snapshot) does not exist yet, or stayed locked past the wait."""


def _is_lock_error(exc: duckdb.Error) -> bool:
    return "lock" in str(exc).lower()


def _connect(path: Path, *, read_only: bool, wait_seconds: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            conn = duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not _is_lock_error(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(_RETRY_SLEEP)
            continue
        except duckdb.Error:
            # Seen once under heavy load on CI: a reader's open of a just-published snapshot failed
            # inside DuckDB (InternalException while loading the file's metadata) and could not be
            # reproduced since. Snapshots are whole files swapped in by rename, so opening again
            # reads a complete one; a file that stays unreadable still fails after the wait.
            if not read_only or time.monotonic() >= deadline:
                raise
            time.sleep(_RETRY_SLEEP)
            continue
        # Days are UTC days wherever the machine runs (TIMESTAMPTZ casts and ::DATE follow this).
        conn.execute("SET TimeZone = 'UTC'")
        return conn


def connect_write(path: Path, *, wait_seconds: float = WRITE_WAIT_SECONDS) -> duckdb.DuckDBPyConnection:
    """A read-write connection, waiting for another writer's lock up to `wait_seconds`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return _connect(path, read_only=False, wait_seconds=wait_seconds)


def connect_read(path: Path, *, wait_seconds: float = READ_WAIT_SECONDS) -> duckdb.DuckDBPyConnection:
    """A read-only connection to `path` itself (retrying briefly on lock errors)."""
    if not path.exists():
        raise WarehouseUnavailable(f"no warehouse at {path}: run the pipeline first")
    try:
        return _connect(path, read_only=True, wait_seconds=wait_seconds)
    except duckdb.IOException as exc:
        if _is_lock_error(exc):
            raise WarehouseUnavailable(f"warehouse {path} is locked by a writer: {exc}") from exc
        raise


@contextmanager
def open_snapshot(
    snapshot: Path, *, wait_seconds: float = READ_WAIT_SECONDS
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The published snapshot file as it is now, attached read-only in an in-memory DuckDB of its own.

    Not `duckdb.connect(snapshot)`: DuckDB keeps one database instance per path in a process, and a
    connect to a path another connection of the process still has open returns that instance, i.e. the
    file the path named when it was opened: with overlapping requests a process would keep reading an
    old snapshot after every publish. ATTACH in a fresh in-memory database opens the file the path names
    now."""
    if not snapshot.exists():
        raise WarehouseUnavailable(f"no warehouse at {snapshot}: run the pipeline first")
    path = str(snapshot).replace("'", "''")
    deadline = time.monotonic() + wait_seconds
    conn = duckdb.connect()
    try:
        conn.execute("SET TimeZone = 'UTC'")  # days are UTC days, as for the writer
        while True:
            try:
                conn.execute(f"ATTACH '{path}' AS {SNAPSHOT_CATALOG} (READ_ONLY)")
                break
            except duckdb.Error as exc:
                # A snapshot is a whole file swapped in by rename: an open that failed (gone for a
                # moment, or the rare failed metadata read seen once on CI) is retried briefly.
                if time.monotonic() >= deadline:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    raise WarehouseUnavailable(f"cannot open {snapshot} ({first})") from exc
                time.sleep(_RETRY_SLEEP)
        conn.execute(f"USE {SNAPSHOT_CATALOG}")
        yield conn
    finally:
        conn.close()


@contextmanager
def read_connection(location: WarehouseLocation) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived read-only connection to the published snapshot: never blocked by, and never
    blocking, a pipeline run. Open one per request or page render; a connection held open keeps
    showing the snapshot it opened."""
    with open_snapshot(location.snapshot) as conn:
        yield conn


def _wait_until_closed(path: Path, timeout: float = 5.0) -> None:
    """Wait until this process holds no descriptor of `path` (Linux; elsewhere a no-op).

    Some DuckDB releases finish a DETACH (and its final checkpoint) after the statement returns; a
    copy renamed into place before that would be handed to readers half written."""
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        return
    wanted = str(path.resolve())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        open_paths = set()
        for entry in fd_dir.iterdir():
            try:
                open_paths.add(os.readlink(entry))
            except OSError:  # closed while listing
                continue
        if wanted not in open_paths:
            return
        time.sleep(_RETRY_SLEEP)
    raise WarehouseUnavailable(f"DuckDB kept {path} open after DETACH for {timeout:.0f} s")


def publish_snapshot(conn: duckdb.DuckDBPyConnection, location: WarehouseLocation) -> Path:
    """Publish what `conn` (a read-write connection to `location.path`, outside any transaction) has
    committed as the readers' snapshot, atomically."""
    target = location.snapshot
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    # DuckDB writes the copy itself. Copying the file from Python would be faster but must open and
    # close it, and closing any descriptor of a file drops all of this process's POSIX locks on it:
    # DuckDB's write lock would silently vanish and a second writer could open the file.
    (source,) = conn.execute("SELECT current_database()").fetchall()[0]
    conn.execute(f"ATTACH '{tmp}' AS _snapshot")
    try:
        conn.execute(f'COPY FROM DATABASE "{source}" TO _snapshot')
    finally:
        conn.execute("DETACH _snapshot")
    _wait_until_closed(tmp)
    try:
        with tmp.open("rb") as handle:  # the copy's own descriptor: no lock of ours on it any more
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
