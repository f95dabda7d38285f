"""DuckDB's file locking as the warehouse meets it, and readers kept off it by the read snapshot."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from warehouse.duckdb import (
    WarehouseUnavailable,
    connect_read,
    connect_write,
    publish_snapshot,
    read_connection,
)
from warehouse.settings import WarehouseLocation

ROOT = Path(__file__).resolve().parents[2]
ROWS_PER_LOAD = 20_000

# A pipeline run in another process: holds the write connection throughout, commits loads one by one
# (rows and their running total in one transaction) and publishes the snapshot after each.
WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from warehouse.duckdb import connect_write, publish_snapshot
    from warehouse.settings import WarehouseLocation

    loc = WarehouseLocation(Path(sys.argv[1]))
    loads, rows = int(sys.argv[2]), int(sys.argv[3])
    conn = connect_write(loc.path)
    conn.execute("CREATE TABLE t (load INTEGER, v BIGINT)")
    conn.execute("CREATE TABLE totals (loads INTEGER, rows BIGINT)")
    conn.execute("INSERT INTO totals VALUES (0, 0)")
    publish_snapshot(conn, loc)
    print("ready", flush=True)
    for i in range(loads):
        conn.execute("BEGIN TRANSACTION")
        conn.execute("INSERT INTO t SELECT ?, range FROM range(?)", [i, rows])
        conn.execute("UPDATE totals SET loads = loads + 1, rows = rows + ?", [rows])
        conn.execute("COMMIT")
        publish_snapshot(conn, loc)
    sys.stdin.readline()  # keep the write lock until the test has looked at it
    """
)


def _writer(loc: WarehouseLocation, loads: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(loc.path), str(loads), str(ROWS_PER_LOAD)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_readers_never_fail_or_wait_while_another_process_writes(tmp_path: Path) -> None:
    loc = WarehouseLocation(tmp_path / "warehouse.duckdb")
    loads = 40
    writer = _writer(loc, loads)
    try:
        # What DuckDB does to a reader of the writer's own file: fails at once, it does not wait. (The
        # writer has published already: publishing must not drop its lock, as a Python file copy
        # would, closing a descriptor of the file releases the process's POSIX locks on it.)
        started = time.monotonic()
        with pytest.raises(WarehouseUnavailable, match="locked"):
            connect_read(loc.path, wait_seconds=0.2)
        assert time.monotonic() - started < 2

        seen: list[int] = []
        slowest = 0.0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            began = time.monotonic()
            with read_connection(loc) as conn:
                ((done, total, counted),) = conn.execute(
                    "SELECT loads, rows, (SELECT count(*) FROM t) FROM totals"
                ).fetchall()
            slowest = max(slowest, time.monotonic() - began)
            # Each snapshot is a committed state: the rows and their total always agree.
            assert counted == total == done * ROWS_PER_LOAD
            seen.append(done)
            if done == loads:
                break
        assert seen == sorted(seen) and seen[-1] == loads
        assert len(set(seen)) > 2, "the reads should have run through the loads"
        assert slowest < 1.0
    finally:
        writer.communicate("\n", timeout=30)
    assert writer.returncode == 0


def test_a_second_writer_waits_for_the_first(tmp_path: Path) -> None:
    loc = WarehouseLocation(tmp_path / "warehouse.duckdb")
    writer = _writer(loc, 1)
    try:
        with pytest.raises(Exception, match="lock"):
            connect_write(loc.path, wait_seconds=0.2)
    finally:
        writer.communicate("\n", timeout=30)
    conn = connect_write(loc.path, wait_seconds=5)
    assert conn.execute("SELECT loads FROM totals").fetchall() == [(1,)]
    conn.close()


def test_a_reader_keeps_the_snapshot_it_opened(tmp_path: Path) -> None:
    loc = WarehouseLocation(tmp_path / "warehouse.duckdb")
    conn = connect_write(loc.path)
    conn.execute("CREATE TABLE t AS SELECT 1 AS v")
    publish_snapshot(conn, loc)
    old_reader = connect_read(loc.snapshot)
    conn.execute("INSERT INTO t VALUES (2)")
    publish_snapshot(conn, loc)
    conn.close()
    assert old_reader.execute("SELECT count(*) FROM t").fetchall() == [(1,)]
    # Closed before reading again: DuckDB hands a new connection in this process the database it
    # already has open under that path name.
    old_reader.close()
    with read_connection(loc) as fresh:
        assert fresh.execute("SELECT count(*) FROM t").fetchall() == [(2,)]


def test_no_snapshot_yet_is_a_clear_error(tmp_path: Path) -> None:
    with (
        pytest.raises(WarehouseUnavailable, match="run the pipeline"),
        read_connection(WarehouseLocation(tmp_path / "warehouse.duckdb")),
    ):
        pass
