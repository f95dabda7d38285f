"""The PostgreSQL warehouse (`Settings.warehouse_url`): the same `raw` and `meta` schemas as the DuckDB
file, in a database that readers query directly (MVCC: no read snapshot to publish).

Writers use ADBC (`connect_write`): Arrow batches go in through COPY ... FROM STDIN BINARY without a
Python object per value. Readers may use any client; `read_connection` gives a psycopg one."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import adbc_driver_postgresql.dbapi as adbc_postgres
import psycopg
from adbc_driver_manager.dbapi import Connection as AdbcConnection
from sqlalchemy.engine import make_url

from warehouse.schema import DDL, SEED_LOAD_STATE

# Serialises schema creation between concurrent first loads: CREATE ... IF NOT EXISTS is not safe
# against a concurrent CREATE of the same name (unique violation in the catalogue).
_DDL_LOCK = zlib.crc32(b"warehouse.schema")


def libpq_uri(url: str) -> str:
    """`postgresql+psycopg://...` (a SQLAlchemy URL, as in Settings) as the `postgresql://...` libpq
    takes."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def connect_write(url: str) -> AdbcConnection:
    """An ADBC connection in autocommit mode: the loads issue BEGIN and COMMIT themselves."""
    conn: AdbcConnection = adbc_postgres.connect(libpq_uri(url), autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def transaction(conn: AdbcConnection) -> Iterator[Any]:
    """BEGIN ... COMMIT on an autocommit ADBC connection; ROLLBACK on any exception."""
    cur = conn.cursor()
    try:
        cur.execute("BEGIN")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")
    finally:
        cur.close()


def ensure_schema(conn: AdbcConnection) -> None:
    """The raw and meta schemas and the meta tables (idempotent, safe against a concurrent caller)."""
    with transaction(conn) as cur:
        cur.execute(f"SELECT pg_advisory_xact_lock({_DDL_LOCK})")
        for statement in DDL:
            cur.execute(statement)
        cur.execute(SEED_LOAD_STATE)


@contextmanager
def read_connection(url: str) -> Iterator[psycopg.Connection[Any]]:
    """A short-lived psycopg connection for reading the warehouse (UTC session time zone)."""
    with psycopg.connect(libpq_uri(url), autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        yield conn
