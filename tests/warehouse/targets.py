"""Warehouse targets for tests: the DuckDB file of the test's data dir, or a fresh PostgreSQL database.

Import the fixture into a test module (`from tests.warehouse.targets import target_settings`): every
test using it runs once per target (and once per store backend through `settings`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.core.settings import Settings
from tests.conftest import PG_ADMIN_URL, service_missing
from warehouse.duckdb import connect_read
from warehouse.postgres import read_connection
from warehouse.settings import warehouse_location

TARGETS = [
    t.strip() for t in os.environ.get("STORE_TEST_WAREHOUSES", "duckdb,postgres").split(",") if t.strip()
]


def create_pg_database(prefix: str) -> str:
    """A new, empty PostgreSQL database; its URL (fails under CI, skips elsewhere, if the server is
    missing)."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        service_missing("PostgreSQL", str(exc).splitlines()[0])
    finally:
        admin.dispose()
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(params=TARGETS)
def target_settings(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Settings]:
    """`settings` pointing at a DuckDB warehouse file of its own, or at a new PostgreSQL database."""
    if request.param == "duckdb":
        yield settings.model_copy(update={"warehouse_url": None})
        return
    url = create_pg_database("wh_test")
    try:
        yield settings.model_copy(update={"warehouse_url": url})
    finally:
        drop_pg_database(url)


def wh_rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    """Rows of `sql` in the warehouse `settings` choose, with Python types (Decimal, aware datetimes).
    DuckDB: the writer's own file, read-only (no writer may be open)."""
    if settings.warehouse_url:
        with read_connection(settings.warehouse_url) as conn:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
    duck = connect_read(warehouse_location(settings).path)
    try:
        return [tuple(r) for r in duck.execute(sql).fetchall()]
    finally:
        duck.close()


def wh_value(settings: Settings, sql: str) -> Any:
    rows = wh_rows(settings, sql)
    assert len(rows) == 1 and len(rows[0]) == 1, rows
    return rows[0][0]
